//go:build !windows

package config

import (
	"fmt"
	"os"
)

// checkSecretsPerm refuses a secrets file that group or others can read or
// write: the file holds the merchant's keys.
func checkSecretsPerm(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("permissions %04o allow group/others access; run: chmod 600 %s", m, path)
	}
	return nil
}

func defaultDataDir() string { return "/var/lib/posbridge" }
