//! A plan's check or prune on its own schedule (or `repo run PLAN --task check|prune`):
//! one step against the plan's repository. No hooks: they frame backups (a freeze before
//! a check would stall the application for nothing), and no Healthchecks start ping (a
//! check is not the backup such a check watches; a failure still pings `/fail`).

use std::time::Instant;

use super::{Runner, Status, Task};
use crate::ops::prune;
use crate::plan::RepositoryConf;

impl Runner<'_> {
    /// Runs `task` (check or prune) on the plan's repository.
    pub(super) fn maintain(&mut self, repo_conf: &RepositoryConf, task: Task) {
        let t = Instant::now();
        let repo = match self.env.opener.open(repo_conf) {
            Ok(r) => r,
            Err(e) => return self.step("open".into(), t, Err(e)),
        };
        self.sink = Some(crate::journal::Sink::of(&repo));
        match task {
            Task::Backup => {}
            // Its scheduled check, or asked for by hand without one, its after-run check.
            Task::Check => {
                let policy = self
                    .plan
                    .scheduled_check
                    .as_ref()
                    .unwrap_or(&self.plan.check);
                self.check(&repo, policy)
            }
            Task::Prune => {
                let req = self
                    .plan
                    .prune
                    .as_ref()
                    .map(|p| p.request())
                    .unwrap_or_default();
                let r = prune::run(&repo, &req, self.ctx)
                    .map(|rep| (Status::Ok, serde_json::to_value(&rep).unwrap_or_default()));
                self.step("prune".into(), t, r);
            }
        }
        if self.ctx.cancelled() {
            self.report.status = Status::Cancelled;
            self.report.error = Some("cancelled".into());
        }
    }
}
