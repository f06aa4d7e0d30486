//! A real Slurm on this machine: `deploy/slurm/local-cluster.sh` starts munged, slurmctld
//! and slurmd in a temporary folder (a single-node cluster), the tests submit
//! `deploy/slurm/sweep.sbatch` as a job array and check what the tasks saw and did.
//!
//! Needs root and `apt-get install -y slurm-wlm munge`; without them the tests fail and say
//! so. `IONFIELD_SKIP_SLURM_TESTS=1` skips them knowingly (printing SKIPPED).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INSTALL: &str = "apt-get install -y slurm-wlm munge";

/// One test cluster at a time: the tests of this file run in parallel threads, and two
/// clusters would share the 2 cores (and the node name).
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// `false` when the tests are knowingly skipped; panics when Slurm, MUNGE or root is
/// missing.
fn require_slurm() -> bool {
    if std::env::var("IONFIELD_SKIP_SLURM_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED Slurm test: IONFIELD_SKIP_SLURM_TESTS=1");
        return false;
    }
    let missing: Vec<&str> = [
        "sbatch",
        "squeue",
        "scontrol",
        "scancel",
        "sinfo",
        "munged",
        "slurmctld",
        "slurmd",
    ]
    .into_iter()
    .filter(|b| !on_path(b))
    .collect();
    assert!(
        missing.is_empty(),
        "the Slurm tests start a real single-node Slurm and need {missing:?} on PATH \
         (/usr/sbin included).\nOn Debian/Ubuntu, as root: {INSTALL}\n\
         (set IONFIELD_SKIP_SLURM_TESTS=1 to skip them knowingly)"
    );
    let uid = Command::new("id").arg("-u").output().expect("id -u runs");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "the Slurm tests start munged and slurmd and must run as root \
         (set IONFIELD_SKIP_SLURM_TESTS=1 to skip them knowingly)"
    );
    true
}

/// A running local cluster; `Drop` stops its daemons (also when the test fails).
struct Cluster {
    dir: tempfile::TempDir,
}

/// One array task as `scontrol show job` reports it.
#[derive(Debug)]
struct Task {
    task_id: String,
    state: String,
    exit_code: String,
    /// How often Slurm requeued it (`Restarts`).
    restarts: u32,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("ionfield-slurm-")
            .tempdir()
            .expect("temp dir");
        let t0 = Instant::now();
        let out = Command::new(repo().join("deploy/slurm/local-cluster.sh"))
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("local-cluster.sh runs");
        assert!(
            out.status.success(),
            "local-cluster.sh start failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "local Slurm up (node idle) in {:.2} s",
            t0.elapsed().as_secs_f64()
        );
        Cluster { dir }
    }

    /// A Slurm client command pointed at this cluster.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.dir.path().join("slurm.conf"));
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .cmd(program)
            .args(args)
            .output()
            .expect("Slurm client runs");
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Submits `script` with `args` from `workdir` with `env` added; returns the job id.
    fn sbatch(&self, workdir: &Path, script: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self
            .cmd("sbatch")
            .arg("--parsable")
            .arg(format!("--chdir={}", workdir.display()))
            .args(args)
            .arg(script)
            .env_remove("RAYON_NUM_THREADS")
            .envs(env.iter().copied())
            .current_dir(workdir)
            .output()
            .expect("sbatch runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "sbatch failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let id = stdout.trim().split(';').next().unwrap().to_string();
        eprintln!("submitted job {id}: sbatch {args:?} {}", script.display());
        id
    }

    /// Waits until no task of `job` is pending or running, then returns every task.
    fn wait(&self, job: &str, timeout: Duration, workdir: &Path) -> Vec<Task> {
        let t0 = Instant::now();
        while !self.run("squeue", &["-h", "-j", job]).trim().is_empty() {
            if t0.elapsed() > timeout {
                panic!(
                    "job {job} not done after {timeout:?}:\n{}\n{}",
                    self.run("squeue", &["-j", job]),
                    job_logs(workdir)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!("job {job} done after {:.1} s", t0.elapsed().as_secs_f64());
        self.tasks(job)
    }

    /// Polls `scontrol show job` until `done(tasks)` holds; panics with the daemons' logs
    /// after `timeout`.
    fn wait_until(
        &self,
        job: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Task]) -> bool,
    ) -> Vec<Task> {
        let t0 = Instant::now();
        loop {
            let tasks = self.tasks(job);
            if done(&tasks) {
                return tasks;
            }
            assert!(
                t0.elapsed() < timeout,
                "job {job}: {what} not reached after {timeout:?}: {tasks:?}\n{}",
                self.daemon_logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls until the node is idle: every job's processes and epilog on it have ended.
    fn wait_node_idle(&self, timeout: Duration) {
        let t0 = Instant::now();
        loop {
            let states = self.run("sinfo", &["-h", "-N", "-o", "%T"]);
            if states.lines().all(|l| l.trim() == "idle") {
                return;
            }
            assert!(
                t0.elapsed() < timeout,
                "node not idle after {timeout:?}: {states}\n{}",
                self.daemon_logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of slurmctld's and slurmd's logs, for failure messages.
    fn daemon_logs(&self) -> String {
        let mut text = String::new();
        for name in ["slurmctld.log", "slurmd.log"] {
            let path = self.dir.path().join("log").join(name);
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            text.push_str(&format!(
                "--- {} (last 40 lines)\n{}\n",
                path.display(),
                tail.join("\n")
            ));
        }
        text
    }

    fn tasks(&self, job: &str) -> Vec<Task> {
        self.run("scontrol", &["show", "job", "-o", job])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let kv: BTreeMap<&str, &str> = l
                    .split_whitespace()
                    .filter_map(|w| w.split_once('='))
                    .collect();
                Task {
                    task_id: kv.get("ArrayTaskId").unwrap_or(&"?").to_string(),
                    state: kv.get("JobState").unwrap_or(&"?").to_string(),
                    exit_code: kv.get("ExitCode").unwrap_or(&"?").to_string(),
                    restarts: kv.get("Restarts").and_then(|r| r.parse().ok()).unwrap_or(0),
                }
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = Command::new(repo().join("deploy/slurm/local-cluster.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            other => eprintln!("local-cluster.sh stop: {other:?}"),
        }
    }
}

/// Every file under `workdir/logs/` (the sbatch scripts' --output), for failure messages.
fn job_logs(workdir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workdir.join("logs"))
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|f| {
            format!(
                "--- {}\n{}",
                f.display(),
                std::fs::read_to_string(f).unwrap_or_default()
            )
        })
        .collect()
}

/// The array task ids of `tasks`, sorted.
fn task_ids(tasks: &[Task]) -> Vec<&str> {
    let mut ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    ids.sort_unstable();
    ids
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A job workdir with `logs/`, readable by the job (it runs as root here anyway).
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("ionfield-slurm-job-")
        .tempdir()
        .expect("temp dir");
    std::fs::create_dir(dir.path().join("logs")).expect("logs dir");
    dir
}

/// `dir/sweep.toml`: Fe Fenton CDT on 12³ voxels of 53 µm, 10 s spin-up, `end_s` of
/// therapy, the dose (`amounts`, a TOML list) as the axis.
fn write_sweep(dir: &Path, end_s: &str, amounts: &str) {
    std::fs::write(
        dir.join("sweep.toml"),
        format!(
            r#"name = "slurm_test"
base = "fe_fenton_cdt"
set = [
    "grid.shape=[12,12,12]",
    "grid.voxel_um=53",
    "time.end_s={end_s}",
    "time.spin_up_s=10",
    "output.slices=[6]",
    "output.png16=false",
    "output.vti=false",
]
mode = "cartesian"

[axes]
"dosing[0].amount_mm" = {amounts}
"#
        ),
    )
    .expect("write sweep.toml");
}

/// Runs the ionfield binary in `dir`; panics unless it exits 0; returns its stdout.
fn ionfield(dir: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_ionfield"))
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", dir)
        .output()
        .expect("ionfield runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(
        o.status.success(),
        "ionfield {args:?}: {}\n{stdout}{stderr}",
        o.status
    );
    stdout
}

/// The `(index, run_id)` pairs of `ionfield sweep sweep.toml --list` (a header line, then
/// `<index> <run_id> key=value ...`).
fn list_runs(dir: &Path) -> Vec<(String, String)> {
    ionfield(dir, &["sweep", "sweep.toml", "--list"])
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().to_string())
        })
        .collect()
}

/// The top-level `status` of a run's manifest.json ("running", "interrupted", "complete").
fn manifest_status(run_dir: &Path) -> String {
    let text = std::fs::read_to_string(run_dir.join("manifest.json")).unwrap_or_default();
    let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    flat.split_once("\"status\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(status, _)| status.to_string())
        .unwrap_or_default()
}

/// `sweep.sbatch` with a stand-in for ionfield that records its arguments, the array
/// variables and its parent process: each task sees SLURM_ARRAY_TASK_ID/MIN/STEP/COUNT as
/// Slurm sets them for job arrays ((ID − MIN) / STEP are distinct shards 0..COUNT), the script
/// passes SWEEP, OUT, BACKEND and JOBS as documented, and `exec` makes the stand-in a direct
/// child of slurmstepd (so --signal=B:TERM reaches it).
#[test]
fn slurm_array_env_reaches_tasks() {
    if !require_slurm() {
        return;
    }
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let work = workdir();
    let fake = work.path().join("fake-ionfield");
    write_executable(
        &fake,
        r#"#!/bin/bash
f="task-$SLURM_ARRAY_TASK_ID"
{
    echo "args=$(printf '%s|' "$@")"
    echo "array=$SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_MIN $SLURM_ARRAY_TASK_STEP $SLURM_ARRAY_TASK_COUNT"
    echo "parent=$(cat /proc/$PPID/comm)"
    echo "rayon=$RAYON_NUM_THREADS"
} > "$f.tmp"
mv "$f.tmp" "$f"
"#,
    );
    let cluster = Cluster::start();
    let t0 = Instant::now();
    let job = cluster.sbatch(
        work.path(),
        &repo().join("deploy/slurm/sweep.sbatch"),
        // Task ids 2, 5, 8: not 0..COUNT, as with any --array=A-B:S.
        &["--array=2-8:3", "--cpus-per-task=1", "--time=5"],
        &[
            ("SWEEP", "my_sweep.toml"),
            ("OUT", "out/my_sweep"),
            ("IONFIELD", fake.to_str().unwrap()),
            ("BACKEND", "cpu"),
            ("JOBS", "3"),
        ],
    );
    let tasks = cluster.wait(&job, Duration::from_secs(120), work.path());
    eprintln!(
        "3-task array of the stand-in: {:.1} s from sbatch to done",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(task_ids(&tasks), ["2", "5", "8"], "{tasks:?}");
    for t in &tasks {
        assert_eq!(
            (t.state.as_str(), t.exit_code.as_str()),
            ("COMPLETED", "0:0"),
            "{t:?}\n{}",
            job_logs(work.path())
        );
    }
    let mut shards = Vec::new();
    for id in [2, 5, 8] {
        let text =
            std::fs::read_to_string(work.path().join(format!("task-{id}"))).unwrap_or_else(|e| {
                panic!("task {id} wrote nothing ({e}):\n{}", job_logs(work.path()))
            });
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("no {key} in {text}"))
                .to_string()
        };
        assert_eq!(
            get("args"),
            "sweep|my_sweep.toml|--out|out/my_sweep|--backend|cpu|--jobs|3|"
        );
        let v: Vec<i64> = get("array")
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(v[0], id, "SLURM_ARRAY_TASK_ID");
        assert_eq!(
            (v[1], v[2], v[3]),
            (2, 3, 3),
            "MIN, STEP, COUNT of task {id}"
        );
        shards.push((v[0] - v[1]) / v[2]);
        assert_eq!(get("parent"), "slurmstepd", "sweep.sbatch execs ionfield");
        assert_eq!(get("rayon"), "1", "RAYON_NUM_THREADS = --cpus-per-task");
    }
    assert_eq!(shards, [0, 1, 2]);
}

/// A SIGTERM to the batch step (what `--signal=B:TERM@120` sends before the time limit,
/// here sent at once with `scancel --batch`) reaches the program sweep.sbatch execs.
#[test]
fn slurm_batch_sigterm_reaches_ionfield() {
    if !require_slurm() {
        return;
    }
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let work = workdir();
    let fake = work.path().join("fake-ionfield");
    write_executable(
        &fake,
        r#"#!/bin/bash
trap 'echo TERM > "term-$SLURM_ARRAY_TASK_ID"; exit 130' TERM
touch "started-$SLURM_ARRAY_TASK_ID"
while :; do sleep 0.1; done
"#,
    );
    let cluster = Cluster::start();
    let job = cluster.sbatch(
        work.path(),
        &repo().join("deploy/slurm/sweep.sbatch"),
        &["--array=0-1", "--cpus-per-task=1", "--time=5"],
        &[("SWEEP", "s.toml"), ("IONFIELD", fake.to_str().unwrap())],
    );
    let t0 = Instant::now();
    while !(0..2).all(|i| work.path().join(format!("started-{i}")).exists()) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "tasks did not start:\n{}\n{}",
            cluster.run("squeue", &["-j", &job]),
            job_logs(work.path())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.run("scancel", &["--batch", "--signal=TERM", &job]);
    let tasks = cluster.wait(&job, Duration::from_secs(60), work.path());
    for i in 0..2 {
        assert!(
            work.path().join(format!("term-{i}")).exists(),
            "task {i} did not get SIGTERM: {tasks:?}\n{}",
            job_logs(work.path())
        );
    }
    assert_eq!(task_ids(&tasks), ["0", "1"], "{tasks:?}");
    for t in &tasks {
        assert_eq!(t.exit_code, "130:0", "exit 130 after SIGTERM: {t:?}");
    }
}

/// The real thing: a 4-run sweep (Fe Fenton CDT, 12³ voxels, 1 min of therapy, the dose
/// as the axis) as a 4-task array of sweep.sbatch on the CPU backend, then `ionfield
/// gather`: results.csv lists all 4 runs as complete.
#[test]
fn slurm_sweep_array_then_gather() {
    if !require_slurm() {
        return;
    }
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let bin = env!("CARGO_BIN_EXE_ionfield");
    let work = workdir();
    let dir = work.path();
    write_sweep(dir, "60", "[0.5, 1.0, 2.0, 4.0]");
    let ionfield = |args: &[&str]| ionfield(dir, args);
    // The run list, before any cluster.
    let runs = list_runs(dir);
    assert_eq!(runs.len(), 4, "sweep --list: {runs:?}");

    let cluster = Cluster::start();
    let t0 = Instant::now();
    let job = cluster.sbatch(
        dir,
        &repo().join("deploy/slurm/sweep.sbatch"),
        &["--array=0-3", "--cpus-per-task=1", "--time=10"],
        &[
            ("SWEEP", "sweep.toml"),
            ("OUT", "out"),
            ("IONFIELD", bin),
            ("BACKEND", "cpu"),
        ],
    );
    let tasks = cluster.wait(&job, Duration::from_secs(300), dir);
    eprintln!(
        "4-task sweep array: {:.1} s from sbatch to done",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(task_ids(&tasks), ["0", "1", "2", "3"], "{tasks:?}");
    for t in &tasks {
        assert_eq!(
            (t.state.as_str(), t.exit_code.as_str()),
            ("COMPLETED", "0:0"),
            "{t:?}\n{}",
            job_logs(dir)
        );
    }
    drop(cluster);

    ionfield(&["gather", "out"]);
    let csv = std::fs::read_to_string(dir.join("out/results.csv")).expect("out/results.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    assert_eq!(header[..3], ["run_id", "index", "status"], "{csv}");
    let rows: Vec<Vec<&str>> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 4, "{csv}");
    for (index, run_id) in &runs {
        let row = rows
            .iter()
            .find(|r| r[0] == run_id)
            .unwrap_or_else(|| panic!("run {run_id} not in results.csv:\n{csv}"));
        assert_eq!(row[1], index, "{csv}");
        assert_eq!(row[2], "complete", "{csv}");
        assert!(
            dir.join("out").join(run_id).join("manifest.json").exists(),
            "out/{run_id}/manifest.json"
        );
    }
}

/// Time limit and requeue for real: a 1-run sweep task gets SIGTERM on its batch step
/// (what `--signal=B:TERM@120` sends), checkpoints and exits 130 (manifest interrupted);
/// `scontrol requeue` runs the task again, and the run resumes from its checkpoint and
/// completes.
#[test]
fn slurm_sweep_sigterm_checkpoints_and_requeue_resumes() {
    if !require_slurm() {
        return;
    }
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let bin = env!("CARGO_BIN_EXE_ionfield");
    let work = workdir();
    let dir = work.path();
    // 10 min of therapy (1200 steps): long enough to be interrupted mid-run.
    write_sweep(dir, "600", "[1.0]");
    let runs = list_runs(dir);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run_dir = dir.join("out").join(&runs[0].1);

    let cluster = Cluster::start();
    let job = cluster.sbatch(
        dir,
        &repo().join("deploy/slurm/sweep.sbatch"),
        &["--array=0", "--cpus-per-task=2", "--time=10"],
        &[
            ("SWEEP", "sweep.toml"),
            ("OUT", "out"),
            ("IONFIELD", bin),
            ("BACKEND", "cpu"),
        ],
    );
    let t0 = Instant::now();
    while manifest_status(&run_dir) != "running" || t0.elapsed() < Duration::from_secs(3) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the run did not start:\n{}\n{}",
            cluster.run("squeue", &["-j", &job]),
            job_logs(dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.run("scancel", &["--batch", "--signal=TERM", &job]);
    let tasks = cluster.wait(&job, Duration::from_secs(120), dir);
    assert_eq!(task_ids(&tasks), ["0"], "{tasks:?}");
    assert_eq!(tasks[0].exit_code, "130:0", "{tasks:?}\n{}", job_logs(dir));
    assert_eq!(
        manifest_status(&run_dir),
        "interrupted",
        "{}",
        job_logs(dir)
    );
    assert!(
        run_dir.join("checkpoint/state.ifck").exists(),
        "no checkpoint:\n{}",
        job_logs(dir)
    );

    let task = format!("{job}_0");
    // Requeue only once the node has finished with the first attempt (its step and
    // epilog): a requeued task launched while the node still holds the old instance of
    // the same job id can fail at launch, before the batch script runs.
    cluster.wait_node_idle(Duration::from_secs(60));
    // slurmd revokes the credential of a job it was told to kill (our SIGTERM), and refuses
    // to launch an instance whose credential was made in the same second as that
    // revocation ("Job credential revoked ... already killed, do not launch batch job", the
    // task then FAILED 1:0 without running: seen here when the requeue followed within
    // 0.1 s). Slurm's own ~2 min BeginTime hold on a requeued task prevents that;
    // `starttime=now` below skips the hold, so let the clock pass the revocation's second.
    std::thread::sleep(Duration::from_secs(2));
    cluster.run("scontrol", &["requeue", &task]);
    // Wait for the requeue to be recorded (Restarts = 1, pending on its BeginTime) before
    // anything reads the task's state, so no wait below can see the first attempt's record.
    cluster.wait_until(
        &task,
        "requeued and pending",
        Duration::from_secs(60),
        |t| t.len() == 1 && t[0].restarts >= 1 && t[0].state == "PENDING",
    );
    // A requeued task waits ~2 min (its BeginTime); start it now.
    cluster.run(
        "scontrol",
        &["update", &format!("jobid={task}"), "starttime=now"],
    );
    let t1 = Instant::now();
    let tasks = cluster.wait(&job, Duration::from_secs(400), dir);
    eprintln!(
        "requeued task: {:.1} s from requeue to done",
        t1.elapsed().as_secs_f64()
    );
    assert_eq!(
        (
            tasks[0].state.as_str(),
            tasks[0].exit_code.as_str(),
            tasks[0].restarts
        ),
        ("COMPLETED", "0:0", 1),
        "{tasks:?}\n{}\n{}",
        job_logs(dir),
        cluster.daemon_logs()
    );
    assert_eq!(manifest_status(&run_dir), "complete", "{}", job_logs(dir));
    let manifest = std::fs::read_to_string(run_dir.join("manifest.json")).unwrap();
    let flat: String = manifest.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(
        flat.contains("\"resumed_from_s\":[") && !flat.contains("\"resumed_from_s\":[]"),
        "the requeued task did not resume from the checkpoint:\n{}",
        job_logs(dir)
    );
    // --open-mode=append: the log holds both attempts.
    let log = job_logs(dir);
    assert!(
        log.contains("restart 0") && log.contains("restart 1"),
        "log of both attempts:\n{log}"
    );
    drop(cluster);
    ionfield(dir, &["gather", "out"]);
    let csv = std::fs::read_to_string(dir.join("out/results.csv")).expect("out/results.csv");
    let row = csv
        .lines()
        .find(|l| l.starts_with(&runs[0].1))
        .unwrap_or_else(|| panic!("run not in results.csv:\n{csv}"));
    assert_eq!(row.split(',').nth(2), Some("complete"), "{csv}");
}
