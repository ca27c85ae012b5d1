//! Feeds arbitrary bytes to the GGUF reader, as a hostile server could.
//!
//! Beyond "no panic, no huge allocation", it checks that the incremental
//! parser is consistent across prefixes, which is what the browser relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unclip::gguf::{parse_header, GgufFile, HeaderStatus};

fuzz_target!(|data: &[u8]| {
    let full = parse_header(data);
    if let Ok(HeaderStatus::Incomplete { need }) = full {
        assert!(need > data.len());
    }
    // A prefix never contradicts the whole: it is Incomplete, or gives the
    // same answer (an error for an invalid whole may come from an earlier
    // field, so only its presence is compared).
    let prefix = &data[..data.len() / 2];
    match (parse_header(prefix), &full) {
        (Ok(HeaderStatus::Incomplete { need }), _) => {
            assert!(need > prefix.len());
            if need <= data.len() {
                let again = parse_header(&data[..need - 1]);
                assert!(matches!(again, Ok(HeaderStatus::Incomplete { need: n }) if n == need));
            }
        }
        // Compared via Debug so that a NaN in the metadata equals itself.
        (Ok(HeaderStatus::Complete(h)), Ok(HeaderStatus::Complete(f))) => {
            assert_eq!(format!("{h:?}"), format!("{f:?}"))
        }
        (Err(_), Err(_)) => {}
        (p, f) => panic!("prefix {p:?} contradicts whole {f:?}"),
    }
    if let Ok(file) = GgufFile::from_bytes(data.to_vec()) {
        for tensor in file.tensors() {
            let values = tensor.to_f32().expect("a loaded tensor decodes");
            assert_eq!(values.len(), tensor.info.n_elements());
        }
    }
});
