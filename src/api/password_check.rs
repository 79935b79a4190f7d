//! Password checks for sign-in, on two dedicated threads with reusable working memory.
//!
//! An argon2 check works in about 19 MiB. With `verify_password` each check allocated that
//! afresh and the process kept it: resident memory grew by 19 MiB per sign-in (8 sign-ins took
//! the server from 33 MB to 166 MB, measured). Here each of two long-lived threads hashes into
//! its own buffer, reused for every check, so sign-ins cost at most two buffers; a short queue
//! makes a flood of attempts wait or be refused (503) instead of costing memory or every core.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

/// Threads checking passwords.
const THREADS: usize = 2;
/// Checks waiting for a thread before new ones are refused.
const QUEUE: usize = 64;

struct Job {
    password: String,
    stored: String,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// A password check could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PasswordCheckError {
    #[error("too many sign-in attempts at once; try again in a moment")]
    Busy,
}

fn queue() -> &'static SyncSender<Job> {
    static QUEUE_SENDER: OnceLock<SyncSender<Job>> = OnceLock::new();
    QUEUE_SENDER.get_or_init(|| {
        let (sender, receiver) = sync_channel::<Job>(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..THREADS {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("password-check-{index}"))
                .spawn(move || work(&receiver))
                .expect("start a password-check thread");
        }
        sender
    })
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = match receiver.lock() {
            Ok(receiver) => match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let _ = job.reply.send(matches(&job.password, &job.stored));
    }
}

/// Checks a password against a PHC-format argon2 hash, with this thread's reusable working
/// memory instead of a new 19 MiB allocation per check.
fn matches(password: &str, stored: &str) -> bool {
    use argon2::password_hash::{Output, PasswordHash};
    use argon2::{Algorithm, Argon2, Block, Params, Version};
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) = (
        Algorithm::try_from(hash.algorithm),
        Params::try_from(&hash),
        hash.hash,
        hash.salt,
    ) else {
        return false;
    };
    let version = hash.version.and_then(|v| Version::try_from(v).ok()).unwrap_or_default();
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let hashed = BLOCKS.with_borrow_mut(|blocks| {
        if blocks.len() < params.block_count() {
            blocks.resize(params.block_count(), Block::default());
        }
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..])
            .is_ok()
    });
    // `Output`'s equality is constant-time.
    hashed && Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Whether `password` matches the stored argon2 hash.
pub async fn password_matches(password: String, stored: String) -> Result<bool, PasswordCheckError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    match queue().try_send(Job {
        password,
        stored,
        reply,
    }) {
        Ok(()) => Ok(answer.await.unwrap_or(false)),
        Err(TrySendError::Full(_)) => Err(PasswordCheckError::Busy),
        Err(TrySendError::Disconnected(_)) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_right_and_wrong_passwords_and_malformed_hashes() {
        let stored = crate::server::hash_password("correct horse").unwrap();
        assert!(password_matches("correct horse".into(), stored.clone()).await.unwrap());
        assert!(!password_matches("wrong".into(), stored).await.unwrap());
        assert!(!password_matches("x".into(), "not a hash".into()).await.unwrap());
    }

    #[tokio::test]
    async fn reads_the_parameters_each_hash_was_made_with() {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        let params = argon2::Params::new(8 * 1024, 3, 2, None).unwrap();
        let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let stored = hasher
            .hash_password(b"pass phrase", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(stored.contains("m=8192,t=3,p=2"), "{stored}");
        assert!(password_matches("pass phrase".into(), stored.clone()).await.unwrap());
        assert!(!password_matches("pass phrase ".into(), stored).await.unwrap());
    }
}
