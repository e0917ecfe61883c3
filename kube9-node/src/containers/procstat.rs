//! What `/proc/<pid>/stat` says of a process: enough to tell a process from a later one
//! that got the same pid (pids are reused, after 32,768 on a default kernel).

pub struct Stat {
    pub state: char,
    pub session: i32,
    /// Start time, in clock ticks after boot: with the pid, names one process for good.
    pub started: u64,
}

impl Stat {
    /// A zombie or a process being torn down.
    pub fn dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// The state (field 3), session (6) and start time (22) from `/proc/<pid>/stat`.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let session = fields.nth(2)?.parse().ok()?;
    let started = fields.nth(15)?.parse().ok()?;
    Some(Stat {
        state,
        session,
        started,
    })
}
