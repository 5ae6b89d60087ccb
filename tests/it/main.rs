//! End-to-end tests of the `aula` binary against the real services.

mod crm_nightly;
mod scheduler_kill;
