//! The agent heals itself: one agent per secret enforced by the kernel's lock,
//! the API URL refused the way the HTTP client would read it, clock skew named, hung
//! databases reported and settled without a restart, accounts verified over a path that
//! reaches them. Each test causes its fault for real and fails if the agent does not
//! handle it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::SOON;
#[cfg(feature = "postgres")]
use crate::support::db::postgres::Pg;
#[cfg(feature = "postgres")]
use crate::support::world::{World, assert_password, secret_value};
use crate::support::{AgentProcess, Endpoint, FakeControlPlane, Fault, Machine, wait_until};

fn pid_file(machine: &Machine, secret: &str) -> std::path::PathBuf {
    machine.agents_dir().join(format!("{secret}.pid"))
}

fn list_json(machine: &Machine) -> Value {
    let out = machine
        .command(&["list", "-o", "json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A process that is no agent (its command line does not name the secret) holding the PID
/// file's lock, as an agent started through a wrapper or under another name would.
/// Its `sleep` children close the lock's descriptor: inherited, it would keep the lock
/// for up to 0.1 s after the holder is killed.
fn lock_holder(path: &Path) -> AgentProcess {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut c = Command::new("sh");
    c.args([
        "-c",
        "exec 9<>\"$1\"; flock -n 9 || exit 9; echo $$ >&9; echo ready; while :; do sleep 0.1 9>&-; done",
        "sh",
    ])
    .arg(path);
    let mut p = AgentProcess::spawn(c);
    p.wait_for_output("ready", SOON);
    p
}

#[test]
fn agents_started_at_the_same_moment_never_both_run() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    // The sync config never comes, so the winner holds its PID file and keeps retrying.
    cp.inject(Endpoint::SyncConfig, Fault::Status(503), 100_000);
    let secret = "sk_race";
    for round in 0..3 {
        let mut agents: Vec<AgentProcess> = (0..6).map(|_| machine.spawn_agent(secret)).collect();
        let mut refused = 0;
        wait_until(SOON, "all but one agent to give up", || {
            refused = agents
                .iter_mut()
                .map(|a| a.try_status().is_some())
                .filter(|exited| *exited)
                .count();
            refused >= 5
        });
        let running: Vec<u32> = agents
            .iter_mut()
            .filter_map(|a| a.try_status().is_none().then(|| a.pid()))
            .collect();
        assert_eq!(running.len(), 1, "round {round}: more than one agent runs");
        let winner = running[0];
        for a in agents.iter_mut().filter(|a| a.pid() != winner) {
            let status = a.wait_exit(SOON);
            assert_eq!(status.code(), Some(1), "{}", a.output());
            assert!(
                a.output().contains("already runs") && a.output().contains(&winner.to_string()),
                "{}",
                a.output()
            );
        }
        let entry = list_json(&machine)[0].clone();
        assert_eq!(entry["running"], true);
        assert_eq!(entry["pid"], winner);
        let mut winner = agents
            .into_iter()
            .find(|a| a.pid() == winner)
            .expect("the winner");
        assert!(winner.terminate().success(), "{}", winner.output());
        assert!(!pid_file(&machine, secret).exists());
    }
}

#[test]
fn a_locked_pid_file_means_running_whatever_the_command_line_says() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let secret = "sk_held";
    let path = pid_file(&machine, secret);
    let mut holder = lock_holder(&path);

    // `start` and `list` give the same answer: the holder runs the agent.
    let mut second = machine.spawn_agent(secret);
    assert_eq!(
        second.wait_exit(SOON).code(),
        Some(1),
        "{}",
        second.output()
    );
    assert!(
        second.output().contains(&format!(
            "already runs on this machine (PID {})",
            holder.pid()
        )),
        "{}",
        second.output()
    );
    assert_eq!(cp.calls(Endpoint::SyncConfig), 0);
    let entry = list_json(&machine)[0].clone();
    assert_eq!(entry["running"], true, "{entry}");
    assert_eq!(entry["pid"], holder.pid());

    // Once the holder is gone, the lock is gone with it: list and start agree again.
    holder.kill9();
    let entry = list_json(&machine)[0].clone();
    assert_eq!(entry["running"], false, "{entry}");
    cp.inject(Endpoint::SyncConfig, Fault::Status(503), 100_000);
    let mut agent = machine.spawn_agent(secret);
    agent.wait_until(SOON, "the new agent to take the PID file", || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == agent.pid().to_string())
    });
    wait_until(SOON, "list to show the new agent", || {
        list_json(&machine)[0]["pid"] == agent.pid()
    });
    assert!(agent.terminate().success(), "{}", agent.output());
}

// ---- the API URL and the server's clock ----

/// An API URL with a path (`https://host/sikkerkey`, behind a reverse proxy) is used as
/// given: every request goes under it and is signed for the path the server receives.
#[cfg(feature = "postgres")]
#[test]
fn an_api_url_with_a_path_prefix_is_requested_and_signed_under_it() {
    let Some(pg) = Pg::open() else { return };
    let mut w = World::plain(&pg);
    w.cp.mount_under("/sikkerkey");
    w.machine.api_url = format!("{}/sikkerkey/", w.cp.url());
    let agent = w.start();
    w.cp.set_pending(
        &w.secret,
        "rot_prefix",
        &secret_value(&w.user, "prefix-new-pw"),
    );
    w.wait_confirmed("rot_prefix", &agent);
    assert_password(&pg, &w.user, "prefix-new-pw", &w.old_pw);
    // `finish` also checks that no request was refused as unsigned or badly signed.
    w.finish(agent, &[&w.old_pw, "prefix-new-pw"]);
}

#[test]
fn an_api_url_with_user_info_is_refused_whatever_host_it_seems_to_name() {
    let cp = FakeControlPlane::start();
    let mut machine = Machine::new(&cp);
    for url in [
        // The HTTP client connects to evil.example; "127.0.0.1:80" is user info.
        "http://127.0.0.1:80@evil.example",
        "https://agent:hunter2-pw@api.sikkerkey.example",
    ] {
        machine.api_url = url.into();
        let mut agent = machine.spawn_agent("sk_url");
        assert_eq!(
            agent.wait_exit(SOON).code(),
            Some(3),
            "{url}: {}",
            agent.output()
        );
        let out = agent.output();
        assert!(
            out.contains("refusing API URL") && !out.contains("hunter2-pw"),
            "{url}: {out}"
        );
    }
    assert_eq!(cp.calls(Endpoint::SyncConfig), 0);
}

/// IMF-fixdate (`Tue, 01 Dec 2026 09:00:00 GMT`) of `secs` since 1970.
fn http_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A control plane whose clock runs `ahead_secs` ahead of this machine's: it refuses every
/// request with 401, as the real one does for a timestamp outside its window, and says
/// what time it is in `Date`. Counts the requests it got.
fn skewed_control_plane(ahead_secs: u64) -> (String, std::sync::Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end().to_ascii_lowercase();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    seen.fetch_add(1, Ordering::SeqCst);
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                    let text = r#"{"error":"unauthorized"}"#;
                    let answer = format!(
                        "HTTP/1.1 401 Unauthorized\r\nDate: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                        http_date(now.as_secs() + ahead_secs),
                        text.len()
                    );
                    if (&stream).write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, count)
}

#[test]
fn a_clock_the_server_refuses_is_named_and_not_retried_every_poll() {
    let cp = FakeControlPlane::start();
    let mut machine = Machine::new(&cp);
    let (url, requests) = skewed_control_plane(600);
    machine.api_url = url;
    let mut agent = machine.spawn_agent("sk_skew");
    agent.wait_for_output("synchronise the clock with NTP", SOON);
    let out = agent.output();
    assert!(
        ["598", "599", "600", "601"]
            .iter()
            .any(|s| out.contains(&format!("clock is {s} s behind the server's"))),
        "{out}"
    );
    // With a 150 ms poll override, a plain retry loop would have sent several more by now.
    let sent = requests.load(Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(2);
    agent.wait_until(Duration::from_secs(3), "two quiet seconds", || {
        Instant::now() > until
    });
    assert_eq!(requests.load(Ordering::SeqCst), sent, "{}", agent.output());
    assert_eq!(sent, 1);
    assert!(agent.try_status().is_none(), "{}", agent.output());
    assert!(agent.terminate().success(), "{}", agent.output());
}
