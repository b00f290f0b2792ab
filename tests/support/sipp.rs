//! SIPp 3.6 playing a scenario of tests/sipp/ on 127.0.0.1 (a registrar, or
//! the far end of requests to our contact; see
//! tests/sipp/README.md): start it, wait for its verdict (exit status 0 =
//! every expected message arrived, in order, and nothing unexpected did), and
//! read what it saw from its message log.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::kamailio::free_port;
use super::wait;
use super::wire::Request;

/// One SIPp process playing a registrar scenario on 127.0.0.1:`port`.
pub struct Sipp {
    pub port: u16,
    pub tcp: bool,
    scenario: String,
    dir: PathBuf,
    child: Option<Child>,
}

/// What a finished SIPp run left behind.
pub struct Outcome {
    pub scenario: String,
    pub code: Option<i32>,
    pub messages: Vec<Msg>,
    pub raw_messages: String,
    pub errors: String,
    pub logs: String,
    pub stdout: String,
}

/// One message of SIPp's message log (`-trace_msg`), read with the tests'
/// request reader (a response reads the same way: its status line is the
/// first line).
#[derive(Clone, Debug)]
pub struct Msg {
    /// True for what SIPp received (our requests), false for what it sent.
    pub received: bool,
    pub msg: Request,
}

impl Deref for Msg {
    type Target = Request;
    fn deref(&self) -> &Request {
        &self.msg
    }
}

impl Msg {
    pub fn is_register(&self) -> bool {
        self.received && self.request_line.starts_with("REGISTER ")
    }
}

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

fn have_sipp() -> bool {
    Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether something listens on 127.0.0.1:`port` (/proc/net, so no probe packet
/// or competing bind disturbs SIPp while it starts).
fn bound(port: u16, tcp: bool) -> bool {
    let file = if tcp {
        "/proc/net/tcp"
    } else {
        "/proc/net/udp"
    };
    let want = format!(":{port:04X}");
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&want) && (!tcp || f[3] == "0A")
        })
}

impl Sipp {
    /// Starts `tests/sipp/<scenario>.xml` on a fresh port. `calls` is SIPp's `-m`.
    pub fn start(scenario: &str, tcp: bool, calls: u32) -> Sipp {
        Sipp::start_on(free_port(), scenario, tcp, calls, &[])
    }

    pub fn start_on(port: u16, scenario: &str, tcp: bool, calls: u32, extra: &[&str]) -> Sipp {
        Sipp::start_edited(port, scenario, tcp, calls, extra, None)
    }

    /// Like [`start_on`](Self::start_on), running a copy of the scenario with the
    /// text `edit.0` replaced by `edit.1` (SIPp cannot take a status code from a
    /// variable: it checks the status line when it loads the scenario).
    pub fn start_edited(
        port: u16,
        scenario: &str,
        tcp: bool,
        calls: u32,
        extra: &[&str],
        edit: Option<(&str, &str)>,
    ) -> Sipp {
        assert!(
            have_sipp(),
            "sipp not found: apt-get install -y sip-tester (tests/setup-machine.sh does)"
        );
        let dir = std::env::temp_dir().join(format!(
            "sipreg-sipp-{}-{port}-{scenario}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut path = scenario_path(scenario);
        if let Some((from, to)) = edit {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(from), "{scenario}.xml has no {from:?}");
            path = dir.join(format!("{scenario}.xml"));
            std::fs::write(&path, text.replace(from, to)).unwrap();
        }
        let f = |n: &str| dir.join(n).to_string_lossy().into_owned();
        let stdout = std::fs::File::create(dir.join("stdout.log")).unwrap();
        let stderr = stdout.try_clone().unwrap();
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(&path)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-t", if tcp { "t1" } else { "u1" }])
            .args(["-m", &calls.to_string()])
            .args(["-nostdin", "-timeout", "40s", "-timeout_error"])
            .args(["-trace_msg", "-message_file", &f("messages.log")])
            .args(["-trace_err", "-error_file", &f("errors.log")])
            .args(["-trace_logs", "-log_file", &f("logs.log")])
            .args(extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn sipp");
        let mut s = Sipp {
            port,
            tcp,
            scenario: scenario.to_owned(),
            dir,
            child: Some(child),
        };
        let up = wait::until(wait::PATIENCE, || {
            if let Some(st) = s.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "sipp {scenario} exited at start ({st}): {}",
                    s.read("stdout.log")
                );
            }
            bound(port, tcp)
        });
        assert!(up, "sipp {scenario} never bound port {port}");
        s
    }

    /// Starts `tests/sipp/<scenario>.xml` once as a UAC over UDP from
    /// 127.0.0.1:`port` towards `target` (host:port), with `-s service`.
    pub fn client(scenario: &str, target: &str, service: &str, port: u16) -> Sipp {
        Sipp::start_on(port, scenario, false, 1, &[target, "-s", service])
    }

    pub fn registrar(&self) -> String {
        if self.tcp {
            format!("sip:127.0.0.1:{};transport=tcp", self.port)
        } else {
            format!("sip:127.0.0.1:{}", self.port)
        }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// Waits for SIPp to end by itself (killing it after `within`).
    pub fn finish(mut self, within: Duration) -> Outcome {
        let mut child = self.child.take().unwrap();
        let status = wait::until_some(within, || child.try_wait().unwrap());
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let raw_messages = self.read("messages.log");
        let out = Outcome {
            scenario: self.scenario.clone(),
            code: status.and_then(|s| s.code()),
            messages: parse_messages(&raw_messages),
            raw_messages,
            errors: self.read("errors.log"),
            logs: self.read("logs.log"),
            stdout: self.read("stdout.log"),
        };
        if out.code == Some(0) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        out
    }

    /// [`finish`](Self::finish), then panics with SIPp's logs unless it passed.
    pub fn passed(self, within: Duration) -> Outcome {
        let out = self.finish(within);
        out.assert_passed();
        out
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Splits SIPp's message log into messages: each starts after a line of
/// dashes and the time, then a line that says whether SIPp sent or received it.
fn parse_messages(log: &str) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<&str>> = None;
    let flush = |cur: Option<Vec<&str>>, out: &mut Vec<Msg>| {
        if let Some(lines) = cur {
            let head = lines.first().copied().unwrap_or("");
            let text = lines
                .iter()
                .skip(1)
                .skip_while(|l| l.trim().is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            out.push(Msg {
                received: head.contains("received"),
                msg: Request::read(text.trim_end()),
            });
        }
    };
    for line in log.lines() {
        if line.starts_with("-----------------------------------------------") {
            flush(cur.take(), &mut out);
            cur = Some(Vec::new());
        } else if let Some(lines) = cur.as_mut() {
            lines.push(line);
        }
    }
    flush(cur, &mut out);
    out
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.code == Some(0)
    }

    pub fn report(&self) -> String {
        let tail: String = {
            let l: Vec<&str> = self.stdout.lines().collect();
            l[l.len().saturating_sub(25)..].join("\n")
        };
        format!(
            "SIPp scenario {} exit {:?}\n--- errors.log\n{}\n--- logs.log\n{}\n--- screen (tail)\n{}\n--- messages.log\n{}",
            self.scenario, self.code, self.errors, self.logs, tail, self.raw_messages
        )
    }

    pub fn assert_passed(&self) {
        assert!(self.passed(), "{}", self.report());
    }

    /// The REGISTERs SIPp received, retransmissions included.
    pub fn registers(&self) -> Vec<&Msg> {
        self.messages.iter().filter(|m| m.is_register()).collect()
    }

    /// The REGISTERs with distinct branches (retransmissions folded), in order.
    pub fn register_transactions(&self) -> Vec<&Msg> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for m in self.registers() {
            let b = m.branch();
            if !seen.contains(&b) {
                seen.push(b);
                out.push(m);
            }
        }
        out
    }
}
