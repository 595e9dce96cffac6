//go:build !windows

package main

func defaultConfigPath() string { return "/etc/posbridge/posbridge.yaml" }
