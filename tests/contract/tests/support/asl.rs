//! An executor for the part of Amazon States Language (JSONPath) the platform's definitions
//! use, with a virtual clock: `Task` (with `Retry` and `Catch`), `Pass`, `Succeed`, `Fail`;
//! `InputPath`, `Parameters` (`.$` keys on paths and `$$.Execution.Id`), `ResultSelector`,
//! `ResultPath`, `OutputPath`. Anything else in a definition is refused, never ignored.
//!
//! Why not the emulator alone: moto runs Step Functions definitions, but a Lambda task there
//! returns whatever result was queued and can never fail, so `Retry` and `Catch` around the
//! steps would go untested; the `asl` crate parses `Retry`/`Catch` but does not execute them.
//! Where moto can run a flow (the success path), the tests run it there too and compare.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// A task's failure: the `Error` and `Cause` Step Functions would see.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

/// What runs a task's resource (a function ARN, a service integration).
#[allow(async_fn_in_trait)]
pub trait Tasks {
    async fn call(&mut self, resource: &str, input: Value) -> Result<Value, TaskError>;
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(Value),
    Failed { error: String, cause: String },
}

/// What happened, state by state: for assertions on attempts and backoff.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Entered(String),
    Attempt {
        state: String,
        attempt: u32,
    },
    TaskFailed {
        state: String,
        error: String,
    },
    Waited {
        state: String,
        seconds: f64,
    },
    Caught {
        state: String,
        error: String,
        next: String,
    },
}

#[derive(Debug)]
pub struct Execution {
    pub outcome: Outcome,
    pub steps: Vec<Step>,
}

impl Execution {
    pub fn attempts(&self, state: &str) -> u32 {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Attempt { state: st, .. } if st == state))
            .count() as u32
    }

    pub fn waits(&self, state: &str) -> Vec<f64> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Waited { state: st, seconds } if st == state => Some(*seconds),
                _ => None,
            })
            .collect()
    }

    pub fn entered(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Entered(name) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }
}

pub struct Machine {
    start_at: String,
    states: BTreeMap<String, Value>,
}

const COMMON: &[&str] = &["Type", "Comment", "Next", "End", "InputPath", "OutputPath"];

impl Machine {
    /// Parses a definition, refusing state types and fields this executor does not run.
    pub fn parse(definition: &Value) -> Result<Self, String> {
        let start_at = definition["StartAt"]
            .as_str()
            .ok_or("no StartAt")?
            .to_owned();
        let states: BTreeMap<String, Value> = definition["States"]
            .as_object()
            .ok_or("no States")?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, state) in &states {
            let allowed: &[&str] = match state["Type"].as_str() {
                Some("Task") => &[
                    "Resource",
                    "Parameters",
                    "ResultSelector",
                    "ResultPath",
                    "Retry",
                    "Catch",
                    "TimeoutSeconds",
                ],
                Some("Pass") => &["Parameters", "Result", "ResultPath"],
                Some("Succeed") => &[],
                Some("Fail") => &["Error", "Cause"],
                other => return Err(format!("state '{name}': type {other:?} is not supported")),
            };
            for key in state.as_object().unwrap().keys() {
                if !COMMON.contains(&key.as_str()) && !allowed.contains(&key.as_str()) {
                    return Err(format!("state '{name}': field {key} is not supported"));
                }
            }
            for next in state["Next"].as_str().into_iter().chain(
                state["Catch"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["Next"].as_str()),
            ) {
                if !states.contains_key(next) {
                    return Err(format!("state '{name}': Next '{next}' does not exist"));
                }
            }
        }
        if !states.contains_key(&start_at) {
            return Err(format!("StartAt '{start_at}' does not exist"));
        }
        Ok(Self { start_at, states })
    }

    pub async fn run(&self, input: Value, execution_id: &str, tasks: &mut impl Tasks) -> Execution {
        let context = json!({"Execution": {"Id": execution_id}});
        let mut steps = Vec::new();
        let mut name = self.start_at.clone();
        let mut data = input;
        loop {
            steps.push(Step::Entered(name.clone()));
            let state = &self.states[&name];
            let fail = |error: String, cause: String, steps: Vec<Step>| Execution {
                outcome: Outcome::Failed { error, cause },
                steps,
            };
            let effective = match select(&data, state.get("InputPath"), &context) {
                Ok(v) => v,
                Err(e) => return fail("States.Runtime".into(), e, steps),
            };
            let result = match state["Type"].as_str().unwrap() {
                "Succeed" => {
                    let output =
                        select(&data, state.get("OutputPath"), &context).unwrap_or(Value::Null);
                    return Execution {
                        outcome: Outcome::Succeeded(output),
                        steps,
                    };
                }
                "Fail" => {
                    return fail(
                        state["Error"].as_str().unwrap_or("").into(),
                        state["Cause"].as_str().unwrap_or("").into(),
                        steps,
                    );
                }
                "Pass" => match state.get("Result") {
                    Some(result) => Ok(result.clone()),
                    None => parameters(state.get("Parameters"), &effective, &context),
                }
                .map_err(|cause| {
                    Caught::Unhandled(TaskError {
                        error: "States.Runtime".into(),
                        cause,
                    })
                }),
                _ => {
                    let task_input = match parameters(state.get("Parameters"), &effective, &context)
                    {
                        Ok(v) => v,
                        Err(e) => return fail("States.Runtime".into(), e, steps),
                    };
                    self.task(&name, state, task_input, &data, &context, tasks, &mut steps)
                        .await
                }
            };
            match result {
                Ok(result) => {
                    data = match apply_result_path(&data, state.get("ResultPath"), result)
                        .and_then(|d| select(&d, state.get("OutputPath"), &context))
                    {
                        Ok(d) => d,
                        Err(e) => return fail("States.Runtime".into(), e, steps),
                    };
                    if state["End"] == true {
                        return Execution {
                            outcome: Outcome::Succeeded(data),
                            steps,
                        };
                    }
                    name = state["Next"].as_str().unwrap().to_owned();
                }
                Err(Caught::Next { next, data: caught }) => {
                    data = caught;
                    name = next;
                }
                Err(Caught::Unhandled(e)) => return fail(e.error, e.cause, steps),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn task(
        &self,
        name: &str,
        state: &Value,
        input: Value,
        raw_input: &Value,
        context: &Value,
        tasks: &mut impl Tasks,
        steps: &mut Vec<Step>,
    ) -> Result<Value, Caught> {
        let resource = state["Resource"].as_str().unwrap_or_default();
        let mut retries_used: BTreeMap<usize, u32> = BTreeMap::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            steps.push(Step::Attempt {
                state: name.to_owned(),
                attempt,
            });
            let error = match tasks.call(resource, input.clone()).await {
                Ok(result) => {
                    return parameters(state.get("ResultSelector"), &result, context).map_err(
                        |e| {
                            Caught::Unhandled(TaskError {
                                error: "States.Runtime".into(),
                                cause: e,
                            })
                        },
                    );
                }
                Err(e) => e,
            };
            steps.push(Step::TaskFailed {
                state: name.to_owned(),
                error: error.error.clone(),
            });
            // The first retrier naming the error (or States.ALL) decides.
            let retriers = state["Retry"].as_array().cloned().unwrap_or_default();
            if let Some((i, retrier)) = retriers
                .iter()
                .enumerate()
                .find(|(_, r)| matches(&r["ErrorEquals"], &error.error))
            {
                let used = retries_used.entry(i).or_insert(0);
                let max = retrier["MaxAttempts"].as_u64().unwrap_or(3) as u32;
                if *used < max {
                    let interval = retrier["IntervalSeconds"].as_f64().unwrap_or(1.0);
                    let rate = retrier["BackoffRate"].as_f64().unwrap_or(2.0);
                    let mut seconds = interval * rate.powi(*used as i32);
                    if let Some(cap) = retrier["MaxDelaySeconds"].as_f64() {
                        seconds = seconds.min(cap);
                    }
                    *used += 1;
                    steps.push(Step::Waited {
                        state: name.to_owned(),
                        seconds,
                    });
                    continue;
                }
            }
            for catcher in state["Catch"].as_array().into_iter().flatten() {
                if matches(&catcher["ErrorEquals"], &error.error) {
                    let next = catcher["Next"].as_str().unwrap().to_owned();
                    steps.push(Step::Caught {
                        state: name.to_owned(),
                        error: error.error.clone(),
                        next: next.clone(),
                    });
                    let error_output = json!({"Error": error.error, "Cause": error.cause});
                    // A catcher's ResultPath applies to the state's raw input.
                    return match apply_result_path(
                        raw_input,
                        catcher.get("ResultPath"),
                        error_output,
                    ) {
                        Ok(data) => Err(Caught::Next { next, data }),
                        Err(cause) => Err(Caught::Unhandled(TaskError {
                            error: "States.Runtime".into(),
                            cause,
                        })),
                    };
                }
            }
            return Err(Caught::Unhandled(error));
        }
    }
}

enum Caught {
    Next { next: String, data: Value },
    Unhandled(TaskError),
}

fn matches(error_equals: &Value, error: &str) -> bool {
    error_equals.as_array().into_iter().flatten().any(|e| {
        let e = e.as_str().unwrap_or_default();
        e == "States.ALL"
            || e == error
            || (e == "States.TaskFailed" && !error.starts_with("States."))
    })
}

/// `InputPath`/`OutputPath`: absent means `$`, null means `{}`.
fn select(data: &Value, path: Option<&Value>, context: &Value) -> Result<Value, String> {
    match path {
        None => Ok(data.clone()),
        Some(Value::Null) => Ok(json!({})),
        Some(Value::String(p)) => read_path(data, p, context),
        Some(other) => Err(format!("path {other} is not supported")),
    }
}

/// `Parameters` / `ResultSelector`: absent means the input itself.
fn parameters(template: Option<&Value>, input: &Value, context: &Value) -> Result<Value, String> {
    match template {
        None => Ok(input.clone()),
        Some(Value::Object(map)) => {
            let mut out = Map::new();
            for (key, value) in map {
                if let Some(field) = key.strip_suffix(".$") {
                    let path = value
                        .as_str()
                        .ok_or_else(|| format!("{key}: a path must be a string"))?;
                    if path.starts_with("States.") {
                        return Err(format!("{key}: intrinsic functions are not supported"));
                    }
                    out.insert(field.to_owned(), read_path(input, path, context)?);
                } else {
                    out.insert(key.clone(), parameters_value(value, input, context)?);
                }
            }
            Ok(Value::Object(out))
        }
        Some(other) => Ok(other.clone()),
    }
}

fn parameters_value(value: &Value, input: &Value, context: &Value) -> Result<Value, String> {
    match value {
        Value::Object(_) => parameters(Some(value), input, context),
        Value::Array(items) => items
            .iter()
            .map(|v| parameters_value(v, input, context))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// A reference path: `$`, `$.a.b`, `$.a[0]`, or `$$.…` on the context object.
fn read_path(data: &Value, path: &str, context: &Value) -> Result<Value, String> {
    let (root, rest) = if let Some(rest) = path.strip_prefix("$$") {
        (context, rest)
    } else if let Some(rest) = path.strip_prefix('$') {
        (data, rest)
    } else {
        return Err(format!("'{path}' is not a reference path"));
    };
    let mut current = root;
    for segment in segments(rest)? {
        current = match segment {
            Segment::Field(f) => current.get(&f),
            Segment::Index(i) => current.get(i),
        }
        .ok_or_else(|| format!("the path '{path}' does not exist in the input"))?;
    }
    Ok(current.clone())
}

/// `ResultPath`: absent means `$` (the result replaces the input), null discards the result.
fn apply_result_path(data: &Value, path: Option<&Value>, result: Value) -> Result<Value, String> {
    let path = match path {
        None => return Ok(result),
        Some(Value::Null) => return Ok(data.clone()),
        Some(Value::String(p)) => p.as_str(),
        Some(other) => return Err(format!("ResultPath {other} is not supported")),
    };
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| format!("ResultPath '{path}' is not a reference path"))?;
    let segments = segments(rest)?;
    if segments.is_empty() {
        return Ok(result);
    }
    let mut out = data.clone();
    let mut current = &mut out;
    for (i, segment) in segments.iter().enumerate() {
        let Segment::Field(field) = segment else {
            return Err(format!("ResultPath '{path}': indexes are not supported"));
        };
        let object = current
            .as_object_mut()
            .ok_or_else(|| format!("ResultPath '{path}': the input is not an object there"))?;
        if i == segments.len() - 1 {
            object.insert(field.clone(), result);
            return Ok(out);
        }
        current = object.entry(field.clone()).or_insert_with(|| json!({}));
    }
    unreachable!()
}

enum Segment {
    Field(String),
    Index(usize),
}

fn segments(rest: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut chars = rest;
    while !chars.is_empty() {
        if let Some(after) = chars.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            out.push(Segment::Field(after[..end].to_owned()));
            chars = &after[end..];
        } else if let Some(after) = chars.strip_prefix('[') {
            let end = after.find(']').ok_or("unclosed [")?;
            let index = after[..end]
                .parse()
                .map_err(|_| format!("[{}] is not an index", &after[..end]))?;
            out.push(Segment::Index(index));
            chars = &after[end + 1..];
        } else {
            return Err(format!("cannot read the path at '{chars}'"));
        }
    }
    Ok(out)
}
