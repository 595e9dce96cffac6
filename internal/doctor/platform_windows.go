//go:build windows

package doctor

import (
	"os"
	"os/user"

	"golang.org/x/sys/windows"
)

// account: on Windows, access is decided by ACLs, which doctor does not
// analyse; the real open/write tests stand alone.
type account struct{ name string }

func lookupAccount(name string) (*account, error) { return nil, os.ErrNotExist }

func (a *account) can(os.FileInfo, bool, bool) bool { return true }

func ownerOf(os.FileInfo) string { return "(ACL)" }

func groupOf(os.FileInfo) string { return "" }

func currentUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "this user"
}

// secretsPermProblem: config does not check ACLs on Windows either; keep
// the file under %ProgramData%\posbridge, whose ACL the installer sets.
func secretsPermProblem(string, os.FileInfo) (string, string) { return "", "" }

func freeBytes(dir string) (uint64, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, err
	}
	var free, total, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &free, &total, &totalFree); err != nil {
		return 0, err
	}
	return free, nil
}

const serialGroupHint = ""
