package dbtrun

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill dbt when this process dies, even by kill -9: an orphaned
// build would go on writing the DuckDB file that the restarted stack must open.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
