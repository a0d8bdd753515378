//! Network namespaces that stand in for hosts: each peer gets a namespace
//! of its own with its own address (10.213.S.i), wired by a veth to one of
//! two bridges in a hub namespace; the bridges are joined by a veth "trunk"
//! that [`Netns::cut`] takes down to partition the groups. The test process
//! itself reaches the peers through one more veth on the first bridge.
//!
//! Needs root and iproute2 (`ip netns`), as CI has; without them
//! [`Netns::new`] panics and says why. Everything is deleted on drop.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{Peer, run_bounded, worker_exe};

/// Network namespaces for one test run, deleted on drop.
pub struct Netns {
    tag: String,
    subnet: u32,
    peers: usize,
}

/// An `ip` command that failed: its arguments and what it said.
#[derive(Debug, thiserror::Error)]
#[error("ip {args}: {stderr}")]
pub struct IpFailed {
    /// The arguments, space-separated.
    args: String,
    /// Its stderr, trimmed.
    stderr: String,
}

/// Runs `ip ARGS`, bounded at 10 s.
fn ip(args: &[&str]) -> Result<(), IpFailed> {
    let out = run_bounded(Command::new("ip").args(args), Duration::from_secs(10));
    if out.status.success() {
        Ok(())
    } else {
        Err(IpFailed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl Netns {
    /// `peers` namespaces, peer i on the bridge of group `group(i)`.
    pub fn new(peers: usize, group: impl Fn(usize) -> usize) -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let n = N.fetch_add(1, Ordering::Relaxed);
        // Interface names are at most 15 bytes: "mr" + 5 digits + a suffix.
        let tag = format!("mr{:05}", (pid * 4 + n) % 100_000);
        let subnet = 1 + (pid * 4 + n) % 250;
        let ns = Netns { tag, subnet, peers };
        ns.remove();
        if let Err(e) = ns.build(&group) {
            panic!(
                "NETWORK NAMESPACES UNAVAILABLE: {e}\n\
                 The partition test needs root and iproute2 (`ip netns`), as CI has."
            );
        }
        ns
    }

    fn hub(&self) -> String {
        format!("{}hub", self.tag)
    }

    fn peer_ns(&self, i: usize) -> String {
        format!("{}p{i}", self.tag)
    }

    /// The address peer `i` listens on.
    pub fn addr(&self, i: usize) -> String {
        format!("10.213.{}.{}:7700", self.subnet, i + 1)
    }

    fn build(&self, group: &impl Fn(usize) -> usize) -> Result<(), IpFailed> {
        let (t, hub) = (&self.tag, self.hub());
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        for br in ["br0", "br1"] {
            ip(&["-n", &hub, "link", "add", br, "type", "bridge"])?;
            ip(&["-n", &hub, "link", "set", br, "up"])?;
        }
        ip(&[
            "-n", &hub, "link", "add", "trunk0", "type", "veth", "peer", "name", "trunk1",
        ])?;
        for (end, br) in [("trunk0", "br0"), ("trunk1", "br1")] {
            ip(&["-n", &hub, "link", "set", end, "master", br, "up"])?;
        }
        for i in 0..self.peers {
            let ns = self.peer_ns(i);
            let (v, h) = (format!("{t}v{i}"), format!("{t}h{i}"));
            ip(&["netns", "add", &ns])?;
            ip(&["link", "add", &v, "type", "veth", "peer", "name", &h])?;
            ip(&["link", "set", &v, "netns", &ns])?;
            ip(&["link", "set", &h, "netns", &hub])?;
            let br = format!("br{}", group(i));
            ip(&["-n", &hub, "link", "set", &h, "master", &br, "up"])?;
            let cidr = format!("10.213.{}.{}/24", self.subnet, i + 1);
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", &v])?;
            ip(&["-n", &ns, "link", "set", &v, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        // The observer: this process reaches the peers through br0.
        let (o, oh) = (format!("{t}o"), format!("{t}oh"));
        ip(&["link", "add", &o, "type", "veth", "peer", "name", &oh])?;
        ip(&["link", "set", &oh, "netns", &hub])?;
        ip(&["-n", &hub, "link", "set", &oh, "master", "br0", "up"])?;
        let cidr = format!("10.213.{}.254/24", self.subnet);
        ip(&["addr", "add", &cidr, "dev", &o])?;
        ip(&["link", "set", &o, "up"])?;
        Ok(())
    }

    /// Peer `i`'s IPv4 address: its host, as other peers see it.
    pub fn ip_of(&self, i: usize) -> String {
        format!("10.213.{}.{}", self.subnet, i + 1)
    }

    /// `ip netns exec NS`, ready for the program and its arguments: a
    /// command run on peer `i`'s host.
    pub fn on_host(&self, i: usize) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.peer_ns(i)]);
        cmd
    }

    /// Cuts (or heals) the trunk between the two groups.
    pub fn cut(&self, cut: bool) {
        let state = if cut { "down" } else { "up" };
        ip(&["-n", &self.hub(), "link", "set", "trunk0", state]).unwrap();
    }

    /// A worker inside peer `i`'s namespace.
    pub fn worker(&self, dir: &Path, i: usize, join: Option<&str>) -> Peer {
        let addr = self.addr(i);
        let mut cmd = self.on_host(i);
        cmd.arg(worker_exe());
        let extra = ["--listen", &addr, "--advertise", &addr];
        let args = Peer::worker_args(join, &extra);
        let name = format!("p{i}");
        Peer::start_cmd(
            cmd,
            &args,
            &dir.join(&name),
            &dir.join(format!("{name}.log")),
        )
    }

    /// Deletes everything; deleting a namespace deletes its veths and their
    /// other ends, including the observer's.
    fn remove(&self) {
        for i in 0..self.peers {
            let _ = ip(&["netns", "del", &self.peer_ns(i)]);
        }
        let _ = ip(&["netns", "del", &self.hub()]);
        let _ = ip(&["link", "del", &format!("{}o", self.tag)]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.remove();
    }
}
