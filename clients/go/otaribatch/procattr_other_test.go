//go:build !linux

package otaribatch_test

import "syscall"

func dieWithParent() *syscall.SysProcAttr { return nil }
