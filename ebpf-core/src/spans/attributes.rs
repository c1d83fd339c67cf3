//! Building OTLP attributes.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, ArrayValue, KeyValue};

pub fn str_attr(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

pub fn int_attr(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(Value::IntValue(value)) }),
        ..Default::default()
    }
}

pub fn bool_attr(key: &str, value: bool) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(Value::BoolValue(value)) }),
        ..Default::default()
    }
}

pub fn double_attr(key: &str, value: f64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(Value::DoubleValue(value)) }),
        ..Default::default()
    }
}

pub fn str_array_attr(key: &str, values: &[String]) -> KeyValue {
    let values = values.iter().map(|v| AnyValue { value: Some(Value::StringValue(v.clone())) }).collect();
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(Value::ArrayValue(ArrayValue { values })) }),
        ..Default::default()
    }
}
