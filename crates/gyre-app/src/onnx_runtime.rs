//! Runs an external model's ONNX file in onnxruntime, loaded at run time from its shared library
//! (the `ort` crate's `load-dynamic`; a build downloads nothing). The library is
//! `$ORT_DYLIB_PATH` when set, else the one inside the Python `onnxruntime` wheel
//! (`python3 -c 'import onnxruntime'`, its `capi/` folder).
//!
//! Why onnxruntime and not tract-onnx (pure Rust): the two examples' graphs (skl2onnx 1.20) use
//! `ai.onnx.ml` `OneHotEncoder` (on string inputs), `Imputer`, `Scaler`, `ArrayFeatureExtractor`
//! and `TreeEnsembleClassifier` (and `ZipMap` unless it is turned off). tract's ONNX-ML module
//! has `TreeEnsembleClassifier` and `CategoryMapper` only (onnx-opl/src/ml), and its maintainers
//! rule out `ZipMap` and every non-tensor value (sonos/tract#1262), so tract would refuse both
//! examples at their first node; a fallback to it would serve only graphs made of numeric
//! tensors, which onnxruntime runs too. So one runtime: onnxruntime, whose `ort` binding builds
//! in about 6 s (tract-onnx was not built here; the decision rests on its operator list).
//!
//! Mapping a request row to the graph's inputs: an input named like a feature gets that
//! feature's column (`[rows, 1]`, or `[rows]` for a rank-1 input): a string input the category
//! (missing or unseen: the empty string), a float or double input the number (missing: NaN;
//! a category as its code). A graph with a single numeric input that is not a feature's name
//! gets every feature in the run's order (`[rows, features]`, categories as codes), as gyre's
//! own export does. The scores are the float tensor output named `probabilities` (else the
//! first float tensor that is not `label`) for a classifier, the first float tensor for a
//! regressor; a `ZipMap` output is refused with how to export without it.

use crate::external_model::{ExternalInfo, FeatureSpec};
use gyre_learn::{Column, Features, Task};
use ort::session::{Session, SessionInputValue};
use ort::tensor::TensorElementType;
use ort::value::{Tensor, ValueType};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// The shared library, loaded once per process.
fn runtime() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let path = library_path()?;
            let builder = ort::init_from(&path)
                .map_err(|e| format!("cannot load onnxruntime from {}: {e}", path.display()))?;
            builder.with_name("gyre").commit();
            Ok(())
        })
        .clone()
}

/// Where onnxruntime's shared library is: `$ORT_DYLIB_PATH`, else inside the Python wheel.
pub fn library_path() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("ORT_DYLIB_PATH")
        && !p.trim().is_empty()
    {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("ORT_DYLIB_PATH={} is not a file", p.display()))
        };
    }
    let hint = "install it (pip install onnxruntime==1.32.0) or set ORT_DYLIB_PATH to \
                libonnxruntime.so";
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi'))",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("onnxruntime not found: cannot run python3 ({e}); {hint}"))?;
    if !out.status.success() {
        return Err(format!(
            "onnxruntime not found: python3 cannot import onnxruntime; {hint}"
        ));
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib")
        })
        .collect();
    libs.sort();
    libs.into_iter()
        .next()
        .ok_or_else(|| format!("no libonnxruntime.so in {}; {hint}", dir.display()))
}

#[derive(Clone, Copy, Debug)]
enum Elem {
    Str,
    F32,
    F64,
}

/// How one graph input is filled from a feature table.
#[derive(Debug)]
enum InputMap {
    /// One feature's column (`rank` 1 or 2).
    Column {
        name: String,
        feature: usize,
        elem: Elem,
        rank: usize,
    },
    /// Every feature, in order, as numbers.
    All { name: String, elem: Elem },
}

/// An ONNX model ready to predict feature tables, with a pool of sessions (one per concurrent
/// caller: onnxruntime's `run` takes the session mutably here).
pub struct OnnxRunner {
    bytes: Vec<u8>,
    sessions: Mutex<Vec<Session>>,
    inputs: Vec<InputMap>,
    features: Vec<FeatureSpec>,
    output: usize,
    task: Task,
}

fn elem_of(t: &ValueType) -> Option<(Elem, usize)> {
    match t {
        ValueType::Tensor { ty, shape, .. } => {
            let e = match ty {
                TensorElementType::String => Elem::Str,
                TensorElementType::Float32 => Elem::F32,
                TensorElementType::Float64 => Elem::F64,
                _ => return None,
            };
            Some((e, shape.len()))
        }
        _ => None,
    }
}

fn session(bytes: &[u8]) -> Result<Session, String> {
    Session::builder()
        .and_then(|b| b.with_intra_threads(1))
        .and_then(|b| b.commit_from_memory(bytes))
        .map_err(|e| format!("onnxruntime cannot load the model: {e}"))
}

impl OnnxRunner {
    pub(crate) fn new(bytes: &[u8], info: &ExternalInfo) -> Result<OnnxRunner, String> {
        runtime()?;
        let s = session(bytes)?;
        let names: Vec<&str> = info.features.iter().map(|f| f.name.as_str()).collect();
        let mut inputs = Vec::new();
        let graph_inputs = s.inputs();
        for i in graph_inputs {
            let (elem, rank) = elem_of(i.dtype()).ok_or_else(|| {
                format!(
                    "the model's input \"{}\" is {:?}; gyre feeds string, float and double \
                     tensors",
                    i.name(),
                    i.dtype()
                )
            })?;
            match names.iter().position(|n| *n == i.name()) {
                Some(feature) => inputs.push(InputMap::Column {
                    name: i.name().to_string(),
                    feature,
                    elem,
                    rank,
                }),
                None if graph_inputs.len() == 1 && !matches!(elem, Elem::Str) => {
                    inputs.push(InputMap::All {
                        name: i.name().to_string(),
                        elem,
                    })
                }
                None => {
                    return Err(format!(
                        "the model's input \"{}\" is not a feature of the run (features: {})",
                        i.name(),
                        names.join(", ")
                    ));
                }
            }
        }
        let outputs = s.outputs();
        let float_tensor = |o: &ort::value::Outlet| {
            matches!(
                o.dtype(),
                ValueType::Tensor {
                    ty: TensorElementType::Float32 | TensorElementType::Float64,
                    ..
                }
            )
        };
        let output = match info.task {
            Task::Regression => outputs.iter().position(float_tensor),
            _ => outputs
                .iter()
                .position(|o| o.name() == "probabilities" && float_tensor(o))
                .or_else(|| {
                    outputs
                        .iter()
                        .position(|o| o.name() != "label" && float_tensor(o))
                }),
        };
        let Some(output) = output else {
            let zipmap = outputs
                .iter()
                .any(|o| matches!(o.dtype(), ValueType::Sequence(_)));
            return Err(if zipmap {
                "the model gives its probabilities as a ZipMap (a sequence of maps); export it \
                 with plain tensors (skl2onnx: options={id(model): {\"zipmap\": False}})"
                    .to_string()
            } else {
                format!(
                    "the model has no float tensor output to read scores from (outputs: {})",
                    outputs
                        .iter()
                        .map(|o| o.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        };
        Ok(OnnxRunner {
            bytes: bytes.to_vec(),
            sessions: Mutex::new(vec![s]),
            inputs,
            features: info.features.clone(),
            output,
            task: info.task,
        })
    }

    /// Scores as gyre's models give them (`gyre_learn::Model::predict`).
    pub(crate) fn predict(&self, features: &Features, rows: &[u32]) -> Result<Vec<f64>, String> {
        let n = rows.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let err = |e: ort::Error| format!("onnxruntime: {e}");
        let column = |feature: usize| -> Result<&Column, String> {
            let want = &self.features[feature].name;
            if features.names.get(feature) == Some(want) {
                return Ok(&features.columns[feature]);
            }
            features
                .names
                .iter()
                .position(|n| n == want)
                .map(|i| &features.columns[i])
                .ok_or_else(|| format!("feature \"{want}\" is missing from the input"))
        };
        let mut values: Vec<(String, SessionInputValue)> = Vec::new();
        for m in &self.inputs {
            match m {
                InputMap::Column {
                    name,
                    feature,
                    elem,
                    rank,
                } => {
                    let col = column(*feature)?;
                    let shape: Vec<i64> = if *rank == 1 {
                        vec![n as i64]
                    } else {
                        vec![n as i64, 1]
                    };
                    let v: SessionInputValue = match elem {
                        Elem::Str => {
                            let cats = &self.features[*feature].categories;
                            let strings: Vec<String> = match col {
                                Column::Categorical { codes, .. } => rows
                                    .iter()
                                    .map(|&r| {
                                        cats.get(codes[r as usize] as usize)
                                            .cloned()
                                            .unwrap_or_default()
                                    })
                                    .collect(),
                                Column::Numeric(_) => {
                                    return Err(format!(
                                        "the model takes feature \"{name}\" as strings, but it is \
                                         numeric"
                                    ));
                                }
                            };
                            Tensor::from_string_array((shape, strings.as_slice()))
                                .map_err(err)?
                                .into()
                        }
                        Elem::F32 => Tensor::from_array((
                            shape,
                            rows.iter()
                                .map(|&r| number(col, r) as f32)
                                .collect::<Vec<f32>>(),
                        ))
                        .map_err(err)?
                        .into(),
                        Elem::F64 => Tensor::from_array((
                            shape,
                            rows.iter().map(|&r| number(col, r)).collect::<Vec<f64>>(),
                        ))
                        .map_err(err)?
                        .into(),
                    };
                    values.push((name.clone(), v));
                }
                InputMap::All { name, elem } => {
                    let k = self.features.len();
                    let cols: Vec<&Column> = (0..k).map(column).collect::<Result<_, String>>()?;
                    let shape = vec![n as i64, k as i64];
                    let flat = rows
                        .iter()
                        .flat_map(|&r| cols.iter().map(move |c| number(c, r)));
                    let v: SessionInputValue = match elem {
                        Elem::F32 => Tensor::from_array((
                            shape,
                            flat.map(|x| x as f32).collect::<Vec<f32>>(),
                        ))
                        .map_err(err)?
                        .into(),
                        _ => Tensor::from_array((shape, flat.collect::<Vec<f64>>()))
                            .map_err(err)?
                            .into(),
                    };
                    values.push((name.clone(), v));
                }
            }
        }
        let mut s = match self.sessions.lock().expect("session pool").pop() {
            Some(s) => s,
            None => session(&self.bytes)?,
        };
        let scores = (|| {
            let out = s.run(values).map_err(err)?;
            let value = &out[self.output];
            let (shape, data): (Vec<i64>, Vec<f64>) = match value.try_extract_tensor::<f32>() {
                Ok((shape, d)) => (shape.to_vec(), d.iter().map(|&x| f64::from(x)).collect()),
                Err(_) => {
                    let (shape, d) = value.try_extract_tensor::<f64>().map_err(err)?;
                    (shape.to_vec(), d.to_vec())
                }
            };
            let width = if shape.len() >= 2 {
                shape[1] as usize
            } else {
                1
            };
            if data.len() != n * width {
                return Err(format!(
                    "the model's output has shape {shape:?} for {n} rows"
                ));
            }
            match self.task {
                Task::Regression if width == 1 => Ok(data),
                Task::Binary if width == 2 => Ok(data.chunks(2).map(|r| r[1]).collect()),
                Task::Binary if width == 1 => Ok(data),
                Task::Multiclass { classes } if width == classes => Ok(data),
                _ => Err(format!(
                    "the model's output has {width} columns; a {} model needs {}",
                    crate::command_learner::task_name(self.task),
                    match self.task {
                        Task::Multiclass { classes } => classes,
                        Task::Binary => 2,
                        Task::Regression => 1,
                    }
                )),
            }
        })();
        self.sessions.lock().expect("session pool").push(s);
        scores
    }
}

/// A feature's value as a number: NaN for missing; a category's code.
fn number(c: &Column, r: u32) -> f64 {
    match c {
        Column::Numeric(v) => v[r as usize],
        Column::Categorical {
            codes, cardinality, ..
        } => {
            let code = codes[r as usize];
            if code < *cardinality {
                f64::from(code)
            } else {
                f64::NAN
            }
        }
    }
}
