//! Importing task files into a project: parse on a blocking thread, write in batches inside one
//! transaction, so a bad file imports nothing and memory stays bounded by the request body.
//!
//! The parser hands batches of [`TaskItem`]s over a bounded channel to the writer; when either side
//! fails the other stops, and the transaction is rolled back.

use std::collections::BTreeSet;

use tokio::sync::mpsc;

use crate::db::{Db, DbError, NewTask};
use crate::model::import_format::{ImportError, ImportFormat, read_tasks};
use crate::model::task_item::TaskItem;

/// Tasks written per batch.
const BATCH_SIZE: usize = 2000;
/// Batches parsed ahead of the writer.
const BATCHES_IN_FLIGHT: usize = 2;
/// Distinct data keys reported back, at most.
const MAX_DATA_COLUMNS: usize = 1000;

/// One file (or request body) to import.
#[derive(Debug, Clone)]
pub struct ImportFile {
    /// The file name, when the tasks came as an uploaded file.
    pub name: Option<String>,
    pub format: ImportFormat,
    pub bytes: bytes::Bytes,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportOutcome {
    pub task_count: usize,
    pub annotation_count: usize,
    pub prediction_count: usize,
    pub task_ids: Vec<i64>,
    pub data_columns: Vec<String>,
    pub found_formats: Vec<String>,
}

/// Why an import failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    #[error("{}{error}", file.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Invalid { file: Option<String>, error: ImportError },
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Reads every file and writes its tasks into the batch's project. With `commit` false, the
/// files are checked and counted but nothing is kept.
pub async fn import_files(
    db: &Db,
    batch: &NewTask,
    files: Vec<ImportFile>,
    commit: bool,
) -> Result<ImportOutcome, ImportFailure> {
    let found_formats: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.name.as_deref())
        .filter_map(|name| {
            name.rsplit_once('.')
                .map(|(_, ext)| format!(".{}", ext.to_ascii_lowercase()))
        })
        .collect();
    let (sender, mut receiver) = mpsc::channel::<Vec<TaskItem>>(BATCHES_IN_FLIGHT);
    let parser = tokio::task::spawn_blocking(move || parse_all(files, sender));

    let mut outcome = ImportOutcome {
        found_formats: found_formats.into_iter().collect(),
        ..ImportOutcome::default()
    };
    let mut columns = BTreeSet::new();
    let mut tx = db.begin_write().await?;
    while let Some(items) = receiver.recv().await {
        for item in &items {
            outcome.annotation_count += item.annotations.len();
            outcome.prediction_count += item.predictions.len();
            if columns.len() < MAX_DATA_COLUMNS {
                columns.extend(item.data.keys().cloned());
            }
        }
        outcome.task_count += items.len();
        let ids = db.insert_tasks(&mut tx, batch, &items).await?;
        outcome.task_ids.extend(ids);
    }
    match parser.await {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => return Err(failure),
        Err(join_error) => {
            tracing::error!(error = %join_error, "import parser stopped unexpectedly");
            return Err(ImportFailure::Invalid {
                file: None,
                error: ImportError {
                    location: "file".into(),
                    reason: "the file could not be read".into(),
                },
            });
        }
    }
    if commit {
        tx.commit().await.map_err(DbError::from)?;
    } else {
        tx.rollback().await.map_err(DbError::from)?;
        outcome.task_ids.clear();
    }
    outcome.data_columns = columns.into_iter().collect();
    Ok(outcome)
}

fn parse_all(files: Vec<ImportFile>, sender: mpsc::Sender<Vec<TaskItem>>) -> Result<(), ImportFailure> {
    let mut buffer: Vec<TaskItem> = Vec::with_capacity(BATCH_SIZE);
    for file in files {
        let outcome = read_tasks(&file.bytes, file.format, |item| {
            buffer.push(item);
            if buffer.len() == BATCH_SIZE {
                let full = std::mem::replace(&mut buffer, Vec::with_capacity(BATCH_SIZE));
                // A closed channel means the writer failed; its error is the one reported.
                sender.blocking_send(full).map_err(|_| ImportError {
                    location: "file".into(),
                    reason: "the import was stopped".into(),
                })?;
            }
            Ok(())
        });
        if let Err(error) = outcome {
            return Err(ImportFailure::Invalid { file: file.name, error });
        }
    }
    if !buffer.is_empty() {
        let _ = sender.blocking_send(buffer);
    }
    Ok(())
}
