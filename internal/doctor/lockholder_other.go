//go:build !linux

package doctor

// lockHolder is only known on Linux (/proc/locks).
func lockHolder(string) (int, string) { return 0, "" }
