package otaribatch_test

import "syscall"

// dieWithParent has the kernel end a started server if the test binary dies without stopping it.
func dieWithParent() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} }
