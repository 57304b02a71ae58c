//! Runs a command and prints its resource usage as JSON: user and system CPU
//! seconds and peak RSS, from `wait4`. The benchmark starts every measured
//! process through this small launcher because Linux counts the memory a
//! process had before `exec` in its peak RSS: a child forked from the Python
//! driver would start at the driver's size.
//!
//! `measure <command> [args...]` prints
//! `{"exit": 0, "user_s": 0.01, "sys_s": 0.0, "max_rss_kb": 9000}` on stderr's
//! last line; the command's own stdout and stderr pass through.

use std::process::Command;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: measure <command> [args...]");
        std::process::exit(2);
    };
    let child = match Command::new(program).args(rest).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("measure: cannot start {program}: {e}");
            std::process::exit(2);
        }
    };
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; the pid is our child's.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    if pid < 0 {
        eprintln!("measure: wait4 failed: {}", std::io::Error::last_os_error());
        std::process::exit(2);
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let exit = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    eprintln!(
        "{{\"exit\": {exit}, \"user_s\": {}, \"sys_s\": {}, \"max_rss_kb\": {}}}",
        seconds(usage.ru_utime),
        seconds(usage.ru_stime),
        usage.ru_maxrss
    );
    std::process::exit(exit);
}
