//! The YAML pipeline loader must never panic, hang or blow up on any input:
//! every byte string yields a pipeline or diagnostics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        let registry = aula_engine::Registry::builtin();
        match aula_engine::spec::parse_pipeline(std::path::Path::new("fuzz.yaml"), src, &registry) {
            Ok(p) => {
                // Exercise the schedule math on whatever parsed.
                if let (Some(s), Some(start)) = (&p.schedule, p.start_date) {
                    let _ = s.interval_containing(start);
                }
            }
            Err(diags) => assert!(!diags.is_empty()),
        }
    }
});
