package testutil

import (
	"os"
	"os/exec"
)

// SelfCommand runs this test binary again (a child process for crash and
// locking tests) with args. Under a cross-architecture run, where `go
// test -exec` starts the binary in a user-mode emulator and the kernel
// cannot execute it directly, POSBRIDGE_TEST_EXEC names that emulator
// (scripts/test.sh sets it to qemu-arm-static or qemu-aarch64-static) and
// the child is started through it too.
func SelfCommand(args ...string) *exec.Cmd {
	if emu := os.Getenv("POSBRIDGE_TEST_EXEC"); emu != "" {
		return exec.Command(emu, append([]string{os.Args[0]}, args...)...)
	}
	return exec.Command(os.Args[0], args...)
}
