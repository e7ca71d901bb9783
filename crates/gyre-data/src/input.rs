//! Opening an input file: what format it is, and streaming its raw columns as Arrow arrays.
//!
//! CSV is decoded by arrow-csv (streaming, every field read as text so that gyre's own inference
//! decides the kinds, with the missing-value tokens the user chose); Parquet by the parquet crate.

use crate::DataError;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv { gzip: bool },
    Parquet,
}

/// Raw columns as read: names in file order and each column's arrays, one per batch.
pub struct RawTable {
    pub names: Vec<String>,
    pub chunks: Vec<Vec<ArrayRef>>,
    pub rows: usize,
    pub format: Format,
}

/// Decides the format from the first bytes, falling back on the extension for plain text.
pub fn detect(path: &Path) -> Result<Format, DataError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::NotFound { path: path.into() },
        _ => DataError::Unreadable {
            path: path.into(),
            source: e,
        },
    })?;
    if meta.is_dir() {
        return Err(DataError::IsDirectory { path: path.into() });
    }
    let mut head = [0u8; 4];
    let n = File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .map_err(|e| DataError::Unreadable {
            path: path.into(),
            source: e,
        })?;
    if n == 0 {
        return Err(DataError::Empty { path: path.into() });
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if head[..n].starts_with(b"PAR1") {
        return Ok(Format::Parquet);
    }
    if head[..n].starts_with(&[0x1f, 0x8b]) {
        return if name.ends_with(".csv.gz") || name.ends_with(".gz") && !name.contains(".tar") {
            Ok(Format::Csv { gzip: true })
        } else {
            Err(DataError::UnknownFileType { path: path.into() })
        };
    }
    if name.ends_with(".csv") || name.ends_with(".txt") || name.ends_with(".tsv") {
        return Ok(Format::Csv { gzip: false });
    }
    Err(DataError::UnknownFileType { path: path.into() })
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Reads the whole input into raw column chunks. `on_rows` is told the running row count.
pub fn read(path: &Path, on_rows: &dyn Fn(usize)) -> Result<RawTable, DataError> {
    match detect(path)? {
        Format::Parquet => read_parquet_input(path, on_rows),
        Format::Csv { gzip } => read_csv(path, gzip, on_rows),
    }
}

fn open_text(path: &Path, gzip: bool) -> Result<Box<dyn Read>, DataError> {
    let f = File::open(path).map_err(|e| DataError::Unreadable {
        path: path.into(),
        source: e,
    })?;
    let f = BufReader::with_capacity(1 << 20, f);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(1 << 16, Inflater::spawn(f)))
    } else {
        Box::new(f)
    })
}

/// Gzip decompression on its own thread, so it overlaps CSV parsing on another core.
struct Inflater {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Inflater {
    fn spawn<R: Read + Send + 'static>(inner: R) -> Inflater {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        std::thread::spawn(move || {
            let mut gz = MultiGzDecoder::new(inner);
            loop {
                let mut buf = vec![0u8; 1 << 20];
                let mut filled = 0;
                let res = loop {
                    match gz.read(&mut buf[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == buf.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(filled);
                let done = filled == 0;
                let msg = match res {
                    Ok(()) => Ok(buf),
                    Err(e) => Err(e),
                };
                let failed = msg.is_err();
                // The reader may have stopped early (an error downstream): then just end.
                if tx.send(msg).is_err() || done || failed {
                    return;
                }
            }
        });
        Inflater {
            rx,
            chunk: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for Inflater {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn io_error(path: &Path, e: std::io::Error) -> DataError {
    DataError::Unreadable {
        path: path.into(),
        source: e,
    }
}

fn read_csv(path: &Path, gzip: bool, on_rows: &dyn Fn(usize)) -> Result<RawTable, DataError> {
    collect(csv_batches(path, gzip)?, on_rows)
}

/// The raw columns of a whole input, from its stream of batches.
fn collect(batches: Batches, on_rows: &dyn Fn(usize)) -> Result<RawTable, DataError> {
    let (names, format, path) = (batches.names.clone(), batches.format, batches.path.clone());
    let mut chunks: Vec<Vec<ArrayRef>> = vec![Vec::new(); names.len()];
    let mut rows = 0usize;
    for batch in batches {
        let batch = batch?;
        rows += batch.num_rows();
        for (i, col) in batch.columns().iter().enumerate() {
            chunks[i].push(col.clone());
        }
        on_rows(rows);
    }
    if names.is_empty() {
        return Err(DataError::Empty { path });
    }
    if rows == 0 {
        return Err(DataError::HeaderOnly { path });
    }
    Ok(RawTable {
        names,
        chunks,
        rows,
        format,
    })
}

/// An input read a batch at a time (64k rows), so a file larger than memory can be streamed:
/// CSV fields as text, Parquet columns as typed.
pub struct Batches {
    pub names: Vec<String>,
    pub format: Format,
    path: std::path::PathBuf,
    inner: Box<dyn Iterator<Item = Result<RecordBatch, DataError>>>,
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

impl Batches {
    /// Where row `row` (0-based over the whole input) is, in the words of its format.
    pub fn location(&self, row: usize) -> String {
        location_of(self.format, row)
    }
}

/// Opens an input for streaming, whatever its format.
pub fn batches(path: &Path) -> Result<Batches, DataError> {
    match detect(path)? {
        Format::Parquet => parquet_batches(path),
        Format::Csv { gzip } => csv_batches(path, gzip),
    }
}

fn csv_batches(path: &Path, gzip: bool) -> Result<Batches, DataError> {
    let names = read_header(path, gzip)?;
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let reader = arrow_csv::ReaderBuilder::new(schema)
        .with_header(true)
        .with_batch_size(64 * 1024)
        .build(open_text(path, gzip)?)
        .map_err(|e| csv_error(path, &names, e))?;
    let (owned, named) = (path.to_path_buf(), names.clone());
    Ok(Batches {
        names,
        format: Format::Csv { gzip },
        path: path.to_path_buf(),
        inner: Box::new(reader.map(move |b| b.map_err(|e| csv_error(&owned, &named, e)))),
    })
}

/// The header row, checked: no empty and no duplicate names.
fn read_header(path: &Path, gzip: bool) -> Result<Vec<String>, DataError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(open_text(path, gzip)?);
    let header = match rdr.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Err(match e.into_kind() {
                csv::ErrorKind::Io(e) => io_error(path, e),
                other => DataError::Malformed {
                    path: path.into(),
                    message: format!("cannot read the header: {other:?}"),
                },
            });
        }
    };
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(DataError::Empty { path: path.into() });
    }
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .map_err(|_| DataError::InvalidUtf8 {
                path: path.into(),
                line: 1,
                field: Some(i + 1),
            })?
            .trim()
            .trim_start_matches('\u{feff}')
            .to_string();
        if name.is_empty() {
            return Err(DataError::EmptyColumnName {
                path: path.into(),
                column: i + 1,
            });
        }
        if let Some(first) = names.iter().position(|n| *n == name) {
            return Err(DataError::DuplicateColumn {
                path: path.into(),
                name,
                first: first + 1,
                second: i + 1,
            });
        }
        names.push(name);
    }
    Ok(names)
}

/// Turns arrow-csv's messages into gyre's, keeping the line numbers it reports.
fn csv_error(path: &Path, names: &[String], e: arrow_schema::ArrowError) -> DataError {
    let msg = e.to_string();
    if let Some(rest) = msg.split("incorrect number of fields for line ").nth(1) {
        // "N, expected E got F"
        let nums: Vec<u64> = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        if nums.len() >= 3 {
            return DataError::Ragged {
                path: path.into(),
                line: nums[0],
                expected: nums[1] as usize,
                found: nums[2] as usize,
            };
        }
    }
    if msg.contains("UTF-8") || msg.contains("utf-8") || msg.contains("utf8") {
        let nums: Vec<u64> = msg
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        // arrow-csv: "Encountered invalid UTF-8 data for line L and field F"
        let line = nums.iter().rev().nth(1).copied().unwrap_or(0);
        let field = nums.last().map(|f| *f as usize);
        return DataError::InvalidUtf8 {
            path: path.into(),
            line,
            field,
        };
    }
    let _ = names;
    DataError::Malformed {
        path: path.into(),
        message: msg,
    }
}

fn read_parquet_input(path: &Path, on_rows: &dyn Fn(usize)) -> Result<RawTable, DataError> {
    collect(parquet_batches(path)?, on_rows)
}

fn parquet_batches(path: &Path) -> Result<Batches, DataError> {
    let f = File::open(path).map_err(|e| io_error(path, e))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| DataError::Malformed {
            path: path.into(),
            message: format!("not a readable Parquet file: {e}"),
        })?;
    let names: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    for (i, n) in names.iter().enumerate() {
        if let Some(first) = names[..i].iter().position(|m| m == n) {
            return Err(DataError::DuplicateColumn {
                path: path.into(),
                name: n.clone(),
                first: first + 1,
                second: i + 1,
            });
        }
    }
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| DataError::Malformed {
            path: path.into(),
            message: e.to_string(),
        })?;
    let owned = path.to_path_buf();
    Ok(Batches {
        names,
        format: Format::Parquet,
        path: path.to_path_buf(),
        inner: Box::new(reader.map(move |b| {
            b.map_err(|e| DataError::Malformed {
                path: owned.clone(),
                message: e.to_string(),
            })
        })),
    })
}

/// Where row `row` (0-based over the whole input) is, in the words of its format: a CSV line
/// (the header is line 1) or a Parquet row.
pub fn location_of(format: Format, row: usize) -> String {
    match format {
        Format::Csv { .. } => format!("line {}", row + 2),
        Format::Parquet => format!("row {}", row + 1),
    }
}

impl RawTable {
    /// Where a row is, in the words of its format: a CSV line (header is line 1) or a Parquet row.
    pub fn location(&self, row: usize) -> String {
        location_of(self.format, row)
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn null_count(&self, col: usize) -> usize {
        self.chunks[col].iter().map(|a| a.null_count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, StringArray};
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;

    /// Other tools write Parquet with snappy (pandas' default), gzip or lz4: gyre reads them all.
    #[test]
    fn reads_parquet_from_other_writers() {
        let dir = tempfile::tempdir().unwrap();
        let batch = RecordBatch::try_from_iter([
            (
                "x",
                Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef,
            ),
            ("y", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
        ])
        .unwrap();
        for (name, c) in [
            ("snappy", Compression::SNAPPY),
            ("gzip", Compression::GZIP(Default::default())),
            ("lz4", Compression::LZ4_RAW),
        ] {
            let path = dir.path().join(format!("{name}.parquet"));
            let props = WriterProperties::builder().set_compression(c).build();
            let mut w = parquet::arrow::ArrowWriter::try_new(
                File::create(&path).unwrap(),
                batch.schema(),
                Some(props),
            )
            .unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            let t = read(&path, &|_| {}).unwrap();
            assert_eq!((t.rows, t.names.len()), (2, 2), "{name}");
        }
    }
}
