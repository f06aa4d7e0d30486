//! One worker's share of a sweep: `--shard I/N`, a Slurm job array or a Kubernetes
//! indexed Job.

/// This worker's share of the runs: those with `index % count == index_of_worker`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// `I/N` as given to `--shard`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || {
            format!("--shard {text}: expected I/N with 0 ≤ I < N, e.g. --shard 0/4. Fix: give the worker index and the worker count")
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn contains(&self, run_index: usize) -> bool {
        run_index % self.count == self.index
    }

    /// The shard from the environment, read through `get`: a Slurm job array
    /// (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN` (default 0), `SLURM_ARRAY_TASK_STEP`
    /// (default 1), `SLURM_ARRAY_TASK_COUNT`: shard (ID − MIN)/STEP of COUNT), else a
    /// Kubernetes indexed Job (`JOB_COMPLETION_INDEX` of `IONFIELD_SHARD_COUNT`, which the
    /// Job manifest sets to `completions`), else all runs (0/1). The second value says
    /// where the shard came from.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<(Shard, String), String> {
        let num = |name: &str| -> Result<Option<i64>, String> {
            match get(name) {
                None => Ok(None),
                Some(s) if s.trim().is_empty() => Ok(None),
                Some(s) => s.trim().parse().map(Some).map_err(|_| {
                    format!("environment variable {name}={s:?} is not an integer. Fix: unset it or give a whole number")
                }),
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1);
            let count = num("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not. Fix: run under `sbatch --array=...` (Slurm sets both), or pass --shard I/N".to_string()
            })?;
            if step < 1 || count < 1 || id < min || (id - min) % step != 0 {
                return Err(format!(
                    "Slurm array task {id} does not fit MIN {min}, STEP {step}, COUNT {count}. Fix: use a regular --array=A-B[:S] range, or pass --shard I/N"
                ));
            }
            let index = ((id - min) / step) as usize;
            if index >= count as usize {
                return Err(format!(
                    "Slurm array task {id} is shard {index} but SLURM_ARRAY_TASK_COUNT is {count}. Fix: use a regular --array=A-B[:S] range (no % limit changes this), or pass --shard I/N"
                ));
            }
            return Ok((
                Shard {
                    index,
                    count: count as usize,
                },
                format!("Slurm array task {id} (MIN {min}, STEP {step}, COUNT {count})"),
            ));
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = num("IONFIELD_SHARD_COUNT")?.ok_or_else(|| {
                "JOB_COMPLETION_INDEX is set (Kubernetes indexed Job) but IONFIELD_SHARD_COUNT is not. Fix: set env IONFIELD_SHARD_COUNT to the Job's `completions` in the manifest, or pass --shard I/N".to_string()
            })?;
            if count < 1 || index < 0 || index >= count {
                return Err(format!(
                    "JOB_COMPLETION_INDEX {index} is not below IONFIELD_SHARD_COUNT {count}. Fix: set IONFIELD_SHARD_COUNT to the Job's `completions`"
                ));
            }
            return Ok((
                Shard {
                    index: index as usize,
                    count: count as usize,
                },
                format!("Kubernetes JOB_COMPLETION_INDEX {index} of IONFIELD_SHARD_COUNT {count}"),
            ));
        }
        Ok((
            Shard::ALL,
            "no --shard or array environment: all runs".into(),
        ))
    }
}
