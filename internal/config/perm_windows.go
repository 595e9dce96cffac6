//go:build windows

package config

import (
	"os"
	"path/filepath"
)

// checkSecretsPerm: on Windows access is governed by ACLs set by the
// installer (the ProgramData folder is restricted to the service account and
// administrators); there is no mode to check.
func checkSecretsPerm(path string) error {
	_, err := os.Stat(path)
	return err
}

func defaultDataDir() string {
	if pd := os.Getenv("ProgramData"); pd != "" {
		return filepath.Join(pd, "posbridge")
	}
	return `C:\ProgramData\posbridge`
}
