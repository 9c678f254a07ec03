//! The suite's own PostgreSQL cluster and RabbitMQ node, on ports of their own under the
//! run's work directory, so that they can be crashed and restarted in the middle of load
//! without touching the machine's services or any other test.
//!
//! PostgreSQL: `initdb` (trust auth, user `postgres`), `pg_ctl start` on 127.0.0.1; a
//! restart is an immediate stop (a crash: no checkpoint, WAL replay on start) and a start.
//! RabbitMQ: a second node (`crossdock-faults-<port>@localhost`) with its own data, log,
//! AMQP and distribution ports and no plugins; a restart is `kill -9` of the node and a
//! start on the same data, so durable queues and persistent messages come back from disk.
//! Run as root, both are run as their own system users (`postgres`, and `rabbitmq` by
//! Debian's wrapper), which own their directories.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

/// A free TCP port on 127.0.0.1 (whoever binds it first gets it; good enough here).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn running_as_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Runs `program args` (as `user` when we are root), failing with its output if it fails.
async fn run(user: &str, program: &Path, args: &[&str]) -> anyhow::Result<String> {
    let mut command = if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", user, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    let output = command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {}", program.display()))?;
    if !output.status.success() {
        bail!(
            "{} {} failed ({}): {}{}",
            program.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Makes `dir` (and its parents) and gives it to `user` when we are root.
async fn own_dir(dir: &Path, user: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if running_as_root() {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{user}:{user}"))
            .arg(dir)
            .status()
            .await?;
        if !status.success() {
            bail!("chown {user} {} failed", dir.display());
        }
    }
    Ok(())
}

/// Waits until `ready` answers true, polling every 200 ms, for at most `within`.
pub(crate) async fn poll_until<F, Fut>(
    what: &str,
    within: Duration,
    mut ready: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if ready().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what} not ready within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A PostgreSQL cluster of the suite's own.
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    /// `initdb` under `work/postgres` and start it on a free port.
    pub async fn start(work: &Path) -> anyhow::Result<Postgres> {
        let bin = postgres_bin()?;
        let dir = work.join("postgres");
        own_dir(&dir, "postgres").await?;
        let data = dir.join("data");
        run(
            "postgres",
            &bin.join("initdb"),
            &[
                "-D",
                path_str(&data)?,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        )
        .await?;
        let postgres = Postgres {
            bin,
            dir,
            port: free_port()?,
        };
        postgres.start_server().await?;
        Ok(postgres)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` as user `postgres`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Starts the server on the existing data directory and waits until it accepts
    /// connections (after a crash, once WAL replay is done).
    pub async fn start_server(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            self.port,
            path_str(&self.dir)?
        );
        run(
            "postgres",
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                path_str(&self.dir.join("data"))?,
                "-o",
                &options,
                "-l",
                path_str(&self.dir.join("server.log"))?,
                "-w",
                "-t",
                "120",
                "start",
            ],
        )
        .await?;
        Ok(())
    }

    /// Stops the server as a crash would: no checkpoint, connections cut.
    pub async fn crash(&self) -> anyhow::Result<()> {
        self.pg_ctl_stop("immediate").await
    }

    /// Stops the server cleanly (end of the run).
    pub async fn stop(&self) -> anyhow::Result<()> {
        self.pg_ctl_stop("fast").await
    }

    async fn pg_ctl_stop(&self, mode: &str) -> anyhow::Result<()> {
        run(
            "postgres",
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                path_str(&self.dir.join("data"))?,
                "-m",
                mode,
                "-w",
                "stop",
            ],
        )
        .await?;
        Ok(())
    }
}

/// The newest PostgreSQL server's binaries (Debian: `/usr/lib/postgresql/<major>/bin`).
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major);
    match newest {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server binaries under {}: run scripts/services.sh (it installs them)",
            root.display()
        ),
    }
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))
}

/// A RabbitMQ node of the suite's own.
pub struct Rabbit {
    dir: PathBuf,
    node: String,
    port: u16,
    dist_port: u16,
}

impl Rabbit {
    /// Starts a node under `work/rabbitmq` on free ports and waits until it runs.
    pub async fn start(work: &Path) -> anyhow::Result<Rabbit> {
        let dir = work.join("rabbitmq");
        std::fs::create_dir_all(dir.join("mnesia"))?;
        std::fs::create_dir_all(dir.join("log"))?;
        let port = free_port()?;
        let dist_port = free_port()?;
        std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.1 = 127.0.0.1:{port}\n"),
        )?;
        own_dir(&dir, "rabbitmq").await?;
        let rabbit = Rabbit {
            node: format!("crossdock-faults-{port}@localhost"),
            dir,
            port,
            dist_port,
        };
        rabbit.start_node().await?;
        Ok(rabbit)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The AMQP URL (guest over loopback).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        let dir = &self.dir;
        command
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Starts the node on its data directory and waits until it has booted (3–10 s).
    pub async fn start_node(&self) -> anyhow::Result<()> {
        let status = self
            .command("rabbitmq-server")
            .arg("-detached")
            .status()
            .await
            .context("running rabbitmq-server: run scripts/services.sh (it installs it)")?;
        if !status.success() {
            bail!("rabbitmq-server -detached failed: {status}");
        }
        poll_until("RabbitMQ", Duration::from_secs(90), || async {
            self.command("rabbitmqctl")
                .args(["-n", &self.node, "await_startup", "--timeout", "5"])
                .status()
                .await
                .is_ok_and(|s| s.success())
        })
        .await
    }

    /// The node's operating-system process id.
    fn pid(&self) -> anyhow::Result<i32> {
        let text =
            std::fs::read_to_string(self.dir.join("pid")).context("reading RabbitMQ's pid file")?;
        text.trim()
            .parse()
            .with_context(|| format!("RabbitMQ's pid file holds {text:?}"))
    }

    /// Kills the node with SIGKILL and waits until it is gone.
    pub async fn kill(&self) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.pid()?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)
            .context("killing RabbitMQ")?;
        poll_until("RabbitMQ's exit", Duration::from_secs(30), || async {
            nix::sys::signal::kill(pid, None).is_err()
        })
        .await
    }

    /// Stops the node (end of the run): politely, then by force.
    pub async fn stop(&self) {
        let stopped = self
            .command("rabbitmqctl")
            .args(["-n", &self.node, "stop"])
            .status()
            .await
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.kill().await;
        }
    }
}
