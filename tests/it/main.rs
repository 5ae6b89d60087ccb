//! End-to-end tests of the `aula` binary against the real services.

mod crm_nightly;
mod dead_letters;
mod scheduler_kill;
