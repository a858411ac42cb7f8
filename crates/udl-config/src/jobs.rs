//! `[jobs]`: the scheduler `udl serve` runs (one runner per job across every process) and
//! each job's cron schedule.

use std::fmt;

use crate::problem::Problem;
use crate::reader::Section;

/// The jobs udl knows, with their default schedules (cron, UTC).
pub const KNOWN_JOBS: [(&str, &str); 2] = [
    ("retention_purge", "15 3 * * *"),
    ("media_rights_prune", "45 3 * * *"),
];

/// One job's schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSchedule {
    /// The job's name (one of [`KNOWN_JOBS`]).
    pub name: String,
    /// Cron expression in UTC: five fields, or six with seconds first.
    pub schedule: String,
    /// Whether the scheduler runs it (`udl jobs run` always can).
    pub enabled: bool,
}

/// `[jobs]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobsConfig {
    /// Whether `udl serve` runs the scheduler at all (`jobs.scheduler`); default true.
    pub scheduler: bool,
    /// Every known job's schedule (`[jobs.<name>] schedule`, `enabled`), defaults filled in.
    pub jobs: Vec<JobSchedule>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            scheduler: true,
            jobs: KNOWN_JOBS
                .iter()
                .map(|(name, schedule)| JobSchedule {
                    name: (*name).to_owned(),
                    schedule: (*schedule).to_owned(),
                    enabled: true,
                })
                .collect(),
        }
    }
}

impl JobsConfig {
    /// The schedule of job `name`, when it is known.
    pub fn job(&self, name: &str) -> Option<&JobSchedule> {
        self.jobs.iter().find(|j| j.name == name)
    }

    pub(crate) fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Self {
        let mut config = JobsConfig {
            scheduler: s.bool("scheduler", problems).unwrap_or(true),
            ..JobsConfig::default()
        };
        for (name, mut section) in s.subsections(problems) {
            let Some(job) = config.jobs.iter_mut().find(|j| j.name == name) else {
                let known: Vec<&str> = KNOWN_JOBS.iter().map(|(n, _)| *n).collect();
                problems.push(Problem {
                    key: format!("jobs.{name}"),
                    problem: format!("unknown job; known: {}", known.join(", ")),
                });
                continue;
            };
            if let Some(schedule) = section.string("schedule", problems) {
                match schedule.parse::<croner::Cron>() {
                    Ok(_) if (5..=6).contains(&schedule.split_whitespace().count()) => {
                        job.schedule = schedule
                    }
                    _ => problems.push(Problem {
                        key: format!("jobs.{name}.schedule"),
                        problem: "must be a cron expression of five fields (\"15 3 * * *\"), \
                                  or six with seconds first, in UTC"
                            .into(),
                    }),
                }
            }
            job.enabled = section.bool("enabled", problems).unwrap_or(true);
            section.finish(problems);
        }
        s.finish(problems);
        config
    }
}

impl fmt::Display for JobsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[jobs]")?;
        writeln!(f, "scheduler = {}", self.scheduler)?;
        for job in &self.jobs {
            writeln!(f, "\n[jobs.{}]", job.name)?;
            writeln!(f, "schedule = \"{}\"", job.schedule)?;
            writeln!(f, "enabled = {}", job.enabled)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(toml_text: &str) -> (JobsConfig, Vec<Problem>) {
        let table: toml::Table = toml_text.parse().expect("test TOML parses");
        let mut problems = Vec::new();
        let config = JobsConfig::read(Section::new("jobs", &table), &mut problems);
        (config, problems)
    }

    #[test]
    fn schedules_default_and_can_be_changed_or_disabled() {
        let (config, problems) =
            read("[retention_purge]\nschedule = \"0 4 * * 1\"\nenabled = false");
        assert!(problems.is_empty(), "{problems:?}");
        let job = config.job("retention_purge").expect("known job");
        assert_eq!((job.schedule.as_str(), job.enabled), ("0 4 * * 1", false));
        assert!(JobsConfig::default()
            .job("retention_purge")
            .is_some_and(|j| j.enabled));
    }

    #[test]
    fn unknown_jobs_and_bad_schedules_are_reported_by_key() {
        let (_, problems) = read(
            "[nightly_magic]\nschedule = \"0 3 * * *\"\n[retention_purge]\nschedule = \"every night\"",
        );
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["jobs.nightly_magic", "jobs.retention_purge.schedule"]
        );
        let (_, problems) = read("[retention_purge]\nschedule = \"0 0 3 * * * 2027\"");
        assert_eq!(problems.len(), 1, "seven fields (a year) are refused");
    }
}
