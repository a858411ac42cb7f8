//! Field encryption throughput on one core: AES-256-GCM of a 1 KiB field (encrypt, then
//! decrypt) with the place bound as associated data, and blind-index HMACs per second.

use std::time::{Duration, Instant};

use udl_core::BlindIndexRule;
use udl_privacy::{BlindIndex, DataKey, FieldCipher, FieldPlace};

const FIELD: usize = 1024;
const WINDOW: Duration = Duration::from_secs(2);

/// Runs `op` on this thread for [`WINDOW`]; calls per second.
fn per_second(mut op: impl FnMut(u64)) -> f64 {
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < WINDOW {
        for _ in 0..256 {
            op(done);
            done += 1;
        }
    }
    done as f64 / started.elapsed().as_secs_f64()
}

/// Prints encryption and blind-index throughput.
pub fn run() -> Result<(), udl::Error> {
    let cipher = FieldCipher::new([(1, DataKey::generate()?)])?;
    let field = vec![0x5a_u8; FIELD];
    let place = FieldPlace {
        store: "postgres",
        table: "session_notes",
        field: "body",
        record_id: b"0b6f3c52-3c6e-4bb4-9a59-0d6cf3a3b0f1",
    };
    let sealed = cipher.encrypt(&place, &field)?;
    let mb = |calls: f64| calls * FIELD as f64 / 1e6;

    let encrypts = per_second(|_| {
        std::hint::black_box(cipher.encrypt(&place, &field).expect("encrypt"));
    });
    let decrypts = per_second(|_| {
        std::hint::black_box(cipher.decrypt(&place, &sealed).expect("decrypt"));
    });
    let index = BlindIndex::new(&DataKey::generate()?);
    let hashes = per_second(|n| {
        let email = format!("fake.patient{n}@example.test");
        std::hint::black_box(index.of("users", "email", &email, BlindIndexRule::CaseInsensitive));
    });
    println!("privacy: one core, {FIELD}-byte field, AES-256-GCM (ring), 2 s per line");
    println!("{:<28} {:>12}", "measure", "value");
    println!("{:<28} {:>12.0}", "encrypt_1k_mb_per_s", mb(encrypts));
    println!("{:<28} {:>12.0}", "decrypt_1k_mb_per_s", mb(decrypts));
    println!("{:<28} {:>12.0}", "blind_index_per_s", hashes);
    Ok(())
}
