//! Writing a table a batch at a time to CSV or Parquet (zstd), into a temporary file beside the
//! target that is renamed into place when finished: a reader never sees half a file, and a
//! failed or interrupted write leaves the target as it was.

use crate::DataError;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// The kinds of output file, chosen by the name's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Csv,
    Parquet,
}

impl OutputFormat {
    /// `.csv`, or `.parquet` / `.pq`; anything else is refused with the path named.
    pub fn of(path: &Path) -> Result<OutputFormat, DataError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if name.ends_with(".csv") {
            Ok(OutputFormat::Csv)
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            Ok(OutputFormat::Parquet)
        } else {
            Err(DataError::Invalid {
                path: path.into(),
                message: "unknown output type: name the file .csv or .parquet".into(),
            })
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Csv => "csv",
            OutputFormat::Parquet => "parquet",
        }
    }
}

enum Sink {
    Csv(arrow_csv::Writer<BufWriter<File>>),
    Parquet(parquet::arrow::ArrowWriter<BufWriter<File>>),
}

/// A table being written; [`TableWriter::finish`] puts it in place. Dropped unfinished, its
/// temporary file is removed.
pub struct TableWriter {
    sink: Option<Sink>,
    target: PathBuf,
    tmp: PathBuf,
}

impl TableWriter {
    pub fn create(target: &Path, schema: SchemaRef) -> Result<TableWriter, DataError> {
        let format = OutputFormat::of(target)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = target.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let io = |e: std::io::Error| DataError::Unreadable {
            path: target.into(),
            source: e,
        };
        let file = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io)?);
        let mut w = TableWriter {
            sink: None,
            target: target.into(),
            tmp,
        };
        w.sink = Some(match format {
            OutputFormat::Csv => Sink::Csv(
                arrow_csv::WriterBuilder::new()
                    .with_header(true)
                    .build(file),
            ),
            OutputFormat::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                    .build();
                Sink::Parquet(
                    parquet::arrow::ArrowWriter::try_new(file, schema, Some(props))
                        .map_err(|e| DataError::Parquet(e.to_string()))?,
                )
            }
        });
        Ok(w)
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), DataError> {
        let target = self.target.clone();
        match self.sink.as_mut().expect("written before finish") {
            Sink::Csv(w) => w.write(batch).map_err(|e| DataError::Malformed {
                path: target,
                message: format!("cannot write CSV: {e}"),
            }),
            Sink::Parquet(w) => w
                .write(batch)
                .map_err(|e| DataError::Parquet(e.to_string())),
        }
    }

    /// Flushes, syncs and renames the file into place.
    pub fn finish(mut self) -> Result<(), DataError> {
        let io = |e: std::io::Error| DataError::Unreadable {
            path: self.target.clone(),
            source: e,
        };
        let file = match self.sink.take().expect("finished once") {
            Sink::Csv(w) => w.into_inner(),
            Sink::Parquet(w) => w
                .into_inner()
                .map_err(|e| DataError::Parquet(e.to_string()))?,
        };
        let file = file.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.tmp, &self.target).map_err(io)
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        if self.sink.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Float64Array, StringArray};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "x",
                Arc::new(Float64Array::from(vec![1.5, 2.0])) as ArrayRef,
            ),
            (
                "y",
                Arc::new(StringArray::from(vec!["a", "b,c"])) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn written_in_batches_and_in_place_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["t.csv", "t.parquet"] {
            let target = dir.path().join(name);
            let mut w = TableWriter::create(&target, batch().schema()).unwrap();
            w.write(&batch()).unwrap();
            w.write(&batch()).unwrap();
            assert!(!target.exists(), "{name} visible before finish");
            w.finish().unwrap();
            let back = crate::input::read(&target, &|_| {}).unwrap();
            assert_eq!((back.rows, back.names.len()), (4, 2), "{name}");
        }
        let text = std::fs::read_to_string(dir.path().join("t.csv")).unwrap();
        assert_eq!(text.lines().next(), Some("x,y"));
        assert!(text.contains("\"b,c\""), "{text}");
        // Dropped unfinished: nothing left behind, the target untouched.
        let target = dir.path().join("t.csv");
        let mut w = TableWriter::create(&target, batch().schema()).unwrap();
        w.write(&batch()).unwrap();
        drop(w);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), text);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert!(OutputFormat::of(Path::new("x.json")).is_err());
    }
}
