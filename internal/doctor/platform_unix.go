//go:build !windows

package doctor

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// account is a user and its groups, for permission analysis.
type account struct {
	name string
	uid  int
	gids []int
}

func lookupAccount(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	a := &account{name: u.Username, uid: uid}
	gids, err := u.GroupIds()
	if err != nil {
		gids = []string{u.Gid}
	}
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil {
			a.gids = append(a.gids, n)
		}
	}
	return a, nil
}

// can reports whether a may read (and write) the file, from its mode,
// owner and group; root may always.
func (a *account) can(fi os.FileInfo, read, write bool) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || a.uid == 0 {
		return true
	}
	m := fi.Mode().Perm()
	var bits os.FileMode
	switch {
	case int(st.Uid) == a.uid:
		bits = (m >> 6) & 7
	case a.inGroup(int(st.Gid)):
		bits = (m >> 3) & 7
	default:
		bits = m & 7
	}
	if read && bits&4 == 0 || write && bits&2 == 0 {
		return false
	}
	// A directory must also be searchable to be of any use.
	if fi.IsDir() && bits&1 == 0 {
		return false
	}
	return true
}

func (a *account) inGroup(gid int) bool {
	for _, g := range a.gids {
		if g == gid {
			return true
		}
	}
	return false
}

// ownerOf names a file's owner and group: "root:dialout".
func ownerOf(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "?"
	}
	u := strconv.Itoa(int(st.Uid))
	if x, err := user.LookupId(u); err == nil {
		u = x.Username
	}
	g := strconv.Itoa(int(st.Gid))
	if x, err := user.LookupGroupId(g); err == nil {
		g = x.Name
	}
	return u + ":" + g
}

// groupOf names a file's group.
func groupOf(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	g := strconv.Itoa(int(st.Gid))
	if x, err := user.LookupGroupId(g); err == nil {
		g = x.Name
	}
	return g
}

func currentUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

// secretsPermProblem mirrors config's rule: group and others get nothing.
func secretsPermProblem(path string, fi os.FileInfo) (detail, fix string) {
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Sprintf("%s has mode %04o: group/others can read the merchant keys (posbridge refuses to start)", path, m),
			"chmod 600 " + path
	}
	return "", ""
}

func freeBytes(dir string) (uint64, error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return 0, err
	}
	return uint64(s.Bavail) * uint64(s.Bsize), nil
}

// serialGroupHint is the group that owns serial devices on this platform.
const serialGroupHint = "dialout"
