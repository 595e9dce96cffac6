package doctor

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockHolder finds the process holding a flock on path from /proc/locks
// (pid 0 when unknown).
func lockHolder(path string) (pid int, comm string) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, ""
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] == "->" {
			continue
		}
		dev := strings.Split(fs[5], ":")
		if len(dev) != 3 {
			continue
		}
		ino, err := strconv.ParseUint(dev[2], 10, 64)
		if err != nil || ino != uint64(st.Ino) {
			continue
		}
		p, err := strconv.Atoi(fs[4])
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + fs[4] + "/comm")
		return p, strings.TrimSpace(string(b))
	}
	return 0, ""
}
