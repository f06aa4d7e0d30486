//! Every subcommand and flag, with its help text. The one place flags are documented.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// ionfield: 3D tumour-tissue chemistry under ion-interference therapies, on the GPU.
///
/// Exit codes: 0 success; 1 the simulation failed; 2 bad input or environment (config
/// errors, unwritable or occupied output folder, no adapter, grid too large for the
/// device, a changed input file on resume); 3 numerical failure; 130 interrupted.
#[derive(Debug, Parser)]
#[command(
    name = "ionfield",
    version,
    about,
    after_help = "Exit codes: 0 success; 1 the simulation failed; 2 bad input or environment (config errors, unwritable or occupied --out, no adapter, grid too large for the device or memory limit, input file changed before resume); 3 numerical failure; 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (the built-in default when CONFIG is omitted) and write its outputs.
    Run(RunArgs),
    /// Continue an interrupted or stopped run from DIR/checkpoint/state.ifck, with the
    /// backend and adapter that wrote it; the result is bit-identical to an uninterrupted run.
    Resume(ResumeArgs),
    /// Validate a scenario: print the resolved values, memory estimate and step count, and
    /// where each value came from (file:line, or the --set).
    Check(CheckArgs),
    /// List GPU adapters and their limits.
    Info,
    /// List the built-in therapy presets (configs/therapies/), one line each.
    List,
    /// Print a scenario's model as Markdown: species, parameters with sources, reactions,
    /// doses. `--all` prints every preset (this is how docs/model.md is made).
    Describe(DescribeArgs),
    /// Print the JSON Schema of a scenario file (editors complete and check keys with it;
    /// the repository keeps a copy in docs/config.schema.json).
    Schema,
    /// Run a parameter sweep (a sweep TOML file: base scenario, fixed sets, axes), or this
    /// worker's shard of it; each run is a child `ionfield run` in OUT/<run_id>/. Finished
    /// runs are skipped, interrupted ones resumed (README "Parameter sweeps").
    Sweep(SweepArgs),
    /// Collect a sweep's runs into DIR/results.csv (status, swept values, metrics) and plot
    /// a metric against an axis (DIR/plots/<metric>_vs_<axis>.png).
    Gather(GatherArgs),
}

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// Sweep file (TOML: name, base, set, mode, [axes]).
    pub sweep: PathBuf,
    /// Check the sweep as a run would (the base, every run's settings), print the
    /// expansion (a header, then `<index> <run_id> <key>=<value> ...` per run of this
    /// worker's shard, see --shard) and exit without running anything.
    #[arg(long)]
    pub list: bool,
    /// Run only runs with index % N == I. Default: from SLURM_ARRAY_TASK_ID/_MIN/_STEP/_COUNT,
    /// else JOB_COMPLETION_INDEX with IONFIELD_SHARD_COUNT, else all runs (0/1).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Output folder of the sweep (sweep.json and one folder per run). Default: out/<sweep name>/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Backend of every run (passed to `ionfield run`).
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Runs of this shard to run at once, sharing the machine (one GPU, its CPU cores: each
    /// run's CPU threads are RAYON_NUM_THREADS, or the cores, divided by K). A small grid
    /// leaves most of a GPU idle; several runs fill it. Default 1.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: u32,
}

#[derive(Debug, clap::Args)]
pub struct GatherArgs {
    /// Output folder of a sweep (holds sweep.json).
    pub dir: PathBuf,
    /// Metric to plot (a column of results.csv).
    #[arg(long, default_value = "final_viable_fraction_tumour")]
    pub metric: String,
    /// Axis on the x axis of the plot. Default: the first axis of the sweep.
    #[arg(long)]
    pub x: Option<String>,
    /// Second axis: plot a heat map of the metric over --x and --y instead of lines.
    #[arg(long)]
    pub y: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// Scenario TOML file or preset name. Omitted: the built-in default.
    pub config: Option<PathBuf>,
    /// Describe every built-in preset, in `ionfield list` order.
    #[arg(long, conflicts_with = "config")]
    pub all: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario TOML file, or the name of a built-in preset (`ionfield list`). Omitted: the
    /// built-in default (configs/therapies/fe_fenton_cdt_day.toml).
    pub config: Option<PathBuf>,
    /// Output folder. Default: out/<scenario name>/. A run folder belongs to one run: a
    /// folder that already holds files is refused (resume an unfinished run there with
    /// `ionfield resume DIR`), unless --overwrite is given.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run into an --out folder that already holds files: first delete the earlier run's
    /// files there (those its manifest.json lists and, in a folder with a run's
    /// manifest.json, config.resolved.toml or checkpoint, ionfield's own file names and the
    /// png/, png16/, fields/, vti/, tiff/, plots/ and checkpoint/ subfolders); other files
    /// are kept.
    #[arg(long)]
    pub overwrite: bool,
    /// Override a config value, e.g. --set time.end_s=60 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Which engine runs: auto = a hardware GPU if present, else the native CPU backend
    /// (faster than software Vulkan); gpu = the wgpu path on any adapter, lavapipe included.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// GPU adapter to use (substring of its name, see `ionfield info`). Also read from
    /// the IONFIELD_ADAPTER environment variable.
    #[arg(long)]
    pub adapter: Option<String>,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
}

/// When checkpoints are written. SIGINT or SIGTERM always writes one: the run finishes the
/// batch of steps in flight (at most 64), writes the checkpoint and pending outputs, and
/// exits with 130, printing the resume command.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckpointArgs {
    /// Write DIR/checkpoint/state.ifck every TIME of model time (seconds, or with a unit:
    /// "2 h", "30min"; at the first batch boundary at or after each multiple), replacing
    /// the previous one.
    #[arg(long, value_name = "TIME", allow_negative_numbers = true, value_parser = model_time)]
    pub checkpoint_every: Option<f64>,
    /// Stop at model TIME (seconds, or with a unit: "12 h"; at the first batch boundary at
    /// or after it) with a checkpoint and exit 0, e.g. to split a long run into job-sized
    /// parts.
    #[arg(long, value_name = "TIME", allow_negative_numbers = true, value_parser = model_time)]
    pub stop_at: Option<f64>,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// Output folder of the run (it holds checkpoint/state.ifck and config.resolved.toml).
    pub dir: PathBuf,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Scenario TOML file. Omitted: the built-in default.
    pub config: Option<PathBuf>,
    /// Override a config value (repeatable), as for `run`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Auto,
    Gpu,
    Cpu,
}

/// A model time on the command line, s: a plain number of seconds (`3600`; any sign, the
/// run checks it) or a number and a unit (`1 h`, `30min`; `config::duration`).
fn model_time(text: &str) -> Result<f64, String> {
    if let Ok(v) = text.trim().parse::<f64>() {
        return Ok(v);
    }
    crate::config::duration::parse_seconds(text).map_err(|problem| {
        format!(
            "`{text}` {problem}. Fix: give seconds (3600) or a number and a unit of s, min, h, d (\"12 h\")"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_repeated_sets_and_a_backend() {
        let cli = Cli::parse_from([
            "ionfield",
            "run",
            "a.toml",
            "--set",
            "x=1",
            "--set",
            "y=2",
            "--backend",
            "cpu",
        ]);
        let Command::Run(args) = cli.command else {
            panic!("parsed as run")
        };
        assert_eq!(args.sets, ["x=1", "y=2"]);
        assert_eq!(args.backend, Backend::Cpu);
    }

    #[test]
    fn model_times_take_units() {
        let parse = |v: &str| {
            let cli = Cli::try_parse_from([
                "ionfield",
                "run",
                "--stop-at",
                v,
                "--checkpoint-every",
                "30min",
            ])
            .map_err(|e| e.to_string())?;
            let Command::Run(args) = cli.command else {
                panic!("parsed as run")
            };
            assert_eq!(args.checkpoints.checkpoint_every, Some(1800.0));
            Ok::<_, String>(args.checkpoints.stop_at)
        };
        assert_eq!(parse("12 h"), Ok(Some(43200.0)));
        assert_eq!(parse("600"), Ok(Some(600.0)));
        assert_eq!(
            parse("-5"),
            Ok(Some(-5.0)),
            "the run refuses it with its own message"
        );
        let e = parse("12 hours").expect_err("unknown unit");
        assert!(
            e.contains("unknown unit `hours`") && e.contains("s, min, h, d"),
            "{e}"
        );
    }
}
