use super::*;

fn tutorial(name: &str) -> Value {
    serde_json::from_str(&crate::tutorial::tutorial_file(name)).unwrap()
}

#[test]
fn a_wrongly_typed_boolean_is_an_error_naming_the_field_not_a_default() {
    let cases = [
        (
            "/spec/ioConfig/appendToExisting",
            "spec.ioConfig.appendToExisting",
        ),
        (
            "/spec/tuningConfig/logParseExceptions",
            "spec.tuningConfig.logParseExceptions",
        ),
        ("/spec/dataSchema/granularitySpec/rollup", "rollup"),
    ];
    for (pointer, field) in cases {
        let mut task = tutorial("rollup-index.json");
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        task.pointer_mut(parent).unwrap()[key] = serde_json::json!("yes");
        let e = IngestionSpec::from_task(&task).unwrap_err().to_string();
        assert!(
            e.contains(field) && e.contains("true or false"),
            "{pointer}: {e}"
        );
    }
    // Absent or null still means Druid's default.
    let mut task = tutorial("rollup-index.json");
    task["spec"]["ioConfig"]["appendToExisting"] = Value::Null;
    assert!(IngestionSpec::from_task(&task).is_ok());
}

#[test]
fn reads_the_rollup_tutorial() {
    let s = IngestionSpec::from_task(&tutorial("rollup-index.json")).unwrap();
    assert_eq!(s.data_source, "rollup-tutorial");
    assert_eq!(s.timestamp.column, "timestamp");
    assert_eq!(
        s.dimensions
            .dimensions
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["srcIP", "dstIP"]
    );
    assert_eq!(s.metrics.len(), 3);
    assert_eq!(
        s.metrics[1],
        Aggregator {
            kind: AggregatorKind::LongSum,
            name: "packets".into(),
            field: Some("packets".into())
        }
    );
    assert_eq!(
        (
            s.granularity.segment,
            s.granularity.query,
            s.granularity.rollup
        ),
        (Granularity::Day, Granularity::Minute, true)
    );
    assert_eq!(
        s.granularity.intervals[0].to_string(),
        "2018-01-01T00:00:00.000Z/2018-01-03T00:00:00.000Z"
    );
    assert_eq!(s.input_format, InputFormat::Json);
    assert!(
        matches!(&s.input_source, InputSource::Local { filter: Some(f), .. } if f == "rollup-data.json")
    );
    assert_eq!(s.tuning.max_rows_in_memory, 25000);
}

#[test]
fn reads_the_legacy_wikipedia_tutorial() {
    let s = IngestionSpec::from_task(&tutorial("wikipedia-index.json")).unwrap();
    assert_eq!(s.data_source, "wikipedia");
    assert_eq!(s.timestamp.column, "time");
    let added = s
        .dimensions
        .dimensions
        .iter()
        .find(|d| d.name == "added")
        .unwrap();
    assert_eq!(added.value_type, ValueType::Long);
    assert!(s.metrics.is_empty());
    assert!(!s.granularity.rollup);
    assert!(
        matches!(&s.input_source, InputSource::Local { filter: Some(f), .. } if f.ends_with(".json.gz"))
    );
}

#[test]
fn errors_name_the_field() {
    let mut t = tutorial("rollup-index.json");
    t["spec"]["dataSchema"]["metricsSpec"][1]["type"] = "hyperUnique".into();
    let e = IngestionSpec::from_task(&t).unwrap_err();
    assert_eq!(e.field, "spec.dataSchema.metricsSpec[1].type");
    assert!(e.to_string().contains("hyperUnique"));
    let mut t = tutorial("rollup-index.json");
    t["spec"]["dataSchema"]["granularitySpec"]["segmentGranularity"] = "fortnight".into();
    assert_eq!(
        IngestionSpec::from_task(&t).unwrap_err().field,
        "spec.dataSchema.granularitySpec.segmentGranularity"
    );
    let mut t = tutorial("rollup-index.json");
    t["spec"]["ioConfig"]["inputFormat"] = serde_json::json!({"type":"csv"});
    assert_eq!(
        IngestionSpec::from_task(&t).unwrap_err().field,
        "spec.ioConfig.inputFormat.columns"
    );
    let mut t = tutorial("rollup-index.json");
    t["spec"]["dataSchema"]["transformSpec"] =
        serde_json::json!({"filter":{"type":"regex","dimension":"a","pattern":"x"}});
    assert!(IngestionSpec::from_task(&t)
        .unwrap_err()
        .message
        .contains("regex"));
    let mut t = tutorial("rollup-index.json");
    t["spec"]["dataSchema"]
        .as_object_mut()
        .unwrap()
        .remove("timestampSpec");
    assert_eq!(
        IngestionSpec::from_task(&t).unwrap_err().field,
        "spec.dataSchema.timestampSpec"
    );
}

#[test]
fn reads_filters_and_csv() {
    let mut t = tutorial("rollup-index.json");
    t["spec"]["ioConfig"]["inputFormat"] =
        serde_json::json!({"type":"tsv","columns":["timestamp","srcIP"],"skipHeaderRows":1});
    t["spec"]["dataSchema"]["transformSpec"] = serde_json::json!({"filter":{"type":"and","fields":[
        {"type":"selector","dimension":"srcIP","value":"1.1.1.1"},
        {"type":"not","field":{"type":"in","dimension":"dstIP","values":["2.2.2.2"]}},
        {"type":"bound","dimension":"packets","lower":"10","ordering":"numeric"}]}});
    let s = IngestionSpec::from_task(&t).unwrap();
    assert!(matches!(
        s.input_format,
        InputFormat::Delimited {
            delimiter: b'\t',
            skip_header_rows: 1,
            ..
        }
    ));
    assert!(matches!(s.filter, Some(Filter::And(ref f)) if f.len() == 3));
}

#[test]
fn reads_expression_transforms_and_refuses_what_it_cannot_run() {
    let mut t = tutorial("rollup-index.json");
    t["spec"]["dataSchema"]["transformSpec"] = serde_json::json!({"transforms":[
        {"type":"expression","name":"kb","expression":"bytes / 1024"},
        {"type":"expression","name":"pair","expression":"concat(srcIP, '>', dstIP)"}]});
    let s = IngestionSpec::from_task(&t).unwrap();
    assert_eq!(s.transforms.len(), 2);
    assert_eq!(s.transforms[1].name, "pair");
    for (transforms, field, says) in [
        (
            serde_json::json!([{"type":"expression","name":"x","expression":"upper(a)"}]),
            "spec.dataSchema.transformSpec.transforms[0].expression",
            "function [upper] is not supported",
        ),
        (
            serde_json::json!([{"type":"javascript","name":"x","function":"f"}]),
            "spec.dataSchema.transformSpec.transforms[0].type",
            "[javascript] is not supported",
        ),
        (
            serde_json::json!([{"type":"expression","expression":"a"}]),
            "spec.dataSchema.transformSpec.transforms[0].name",
            "is required",
        ),
    ] {
        t["spec"]["dataSchema"]["transformSpec"] = serde_json::json!({ "transforms": transforms });
        let e = IngestionSpec::from_task(&t).unwrap_err();
        assert_eq!(e.field, field);
        assert!(e.message.contains(says), "{e}");
    }
}

#[test]
fn wrong_types_anywhere_name_their_path() {
    let cases = [
        (
            "/spec/tuningConfig/maxRowsInMemory",
            serde_json::json!("lots"),
            "spec.tuningConfig.maxRowsInMemory",
        ),
        (
            "/spec/tuningConfig/partitionsSpec",
            serde_json::json!({"type":"dynamic","maxRowsPerSegment":-5}),
            "spec.tuningConfig.partitionsSpec.maxRowsPerSegment",
        ),
        (
            "/spec/dataSchema/metricsSpec",
            serde_json::json!([{"type":"count","name":"count"},{"type":"longSum","name":7}]),
            "spec.dataSchema.metricsSpec[1].name",
        ),
        (
            "/spec/dataSchema/dimensionsSpec",
            serde_json::json!({"dimensions":["a", 3]}),
            "spec.dataSchema.dimensionsSpec.dimensions[1]",
        ),
        (
            "/spec/dataSchema/granularitySpec",
            serde_json::json!({"intervals":["not an interval"]}),
            "spec.dataSchema.granularitySpec.intervals[0]",
        ),
        (
            "/spec/ioConfig/inputSource",
            serde_json::json!({"type":"hdfs","paths":"hdfs://n/k"}),
            "spec.ioConfig.inputSource.type",
        ),
        (
            "/spec/dataSchema/dataSource",
            serde_json::json!(["wiki"]),
            "spec.dataSchema.dataSource",
        ),
    ];
    for (pointer, value, field) in cases {
        let mut task = tutorial("rollup-index.json");
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        task.pointer_mut(parent).unwrap()[key] = value;
        let e = IngestionSpec::from_task(&task).unwrap_err();
        assert_eq!(e.field, field, "{pointer}: {e}");
    }
    // The unknown input source is named with the ones there are.
    let mut task = tutorial("rollup-index.json");
    task["spec"]["ioConfig"]["inputSource"] = serde_json::json!({"type":"hdfs"});
    let e = IngestionSpec::from_task(&task).unwrap_err();
    assert!(
        e.message.contains("hdfs") && e.message.contains("local") && e.message.contains("s3"),
        "{e}"
    );
    // A spec that is not an object at all.
    let e = IngestionSpec::from_task(&serde_json::json!({"type":"index","spec":"x"})).unwrap_err();
    assert_eq!(e.field, "spec");
}

#[test]
fn reads_druid_and_combining_sources() {
    let mut task = tutorial("rollup-index.json");
    let io = &mut task["spec"]["ioConfig"];
    io["inputSource"] = serde_json::json!({"type": "druid", "dataSource": "rollup-tutorial",
        "interval": "2018-01-01/2018-01-03", "filter": {"type": "selector", "dimension": "srcIP",
        "value": "1.1.1.1"}});
    // Rows from segments need no inputFormat.
    io.as_object_mut().unwrap().remove("inputFormat");
    let s = IngestionSpec::from_task(&task).unwrap();
    assert!(matches!(
        &s.input_source,
        InputSource::Druid {
            filter: Some(_),
            ..
        }
    ));
    assert!(s.input_source.reads_only_segments());
    assert_eq!(s.input_format, InputFormat::Json);

    let mut task = tutorial("rollup-index.json");
    task["spec"]["ioConfig"]["inputSource"] = serde_json::json!({"type": "combining",
        "delegates": [{"type": "ingestSegment", "dataSource": "d", "interval": "2018-01-01/2018-01-02"},
                      {"type": "inline", "data": "{}"}]});
    let s = IngestionSpec::from_task(&task).unwrap();
    let InputSource::Combining(delegates) = &s.input_source else {
        panic!("{:?}", s.input_source)
    };
    assert_eq!(delegates.len(), 2);
    assert!(!s.input_source.reads_only_segments());

    for (source, field) in [
        (
            serde_json::json!({"type": "druid", "interval": "2018-01-01/2018-01-02"}),
            "spec.ioConfig.inputSource.dataSource",
        ),
        (
            serde_json::json!({"type": "druid", "dataSource": "d"}),
            "spec.ioConfig.inputSource.interval",
        ),
        (
            serde_json::json!({"type": "combining", "delegates": []}),
            "spec.ioConfig.inputSource.delegates",
        ),
        (
            serde_json::json!({"type": "combining", "delegates": [{"type": "local"}]}),
            "spec.ioConfig.inputSource.delegates[0]",
        ),
    ] {
        let mut task = tutorial("rollup-index.json");
        task["spec"]["ioConfig"]["inputSource"] = source.clone();
        let e = IngestionSpec::from_task(&task).unwrap_err();
        assert_eq!(e.field, field, "{source}: {e}");
    }
}

#[test]
fn partitions_specs_are_read_as_druid_reads_them() {
    use crate::partitioning::PartitionsSpec;
    use serde_json::json;
    let with = |tuning: Value| {
        let mut t = tutorial("rollup-index.json");
        t["spec"]["tuningConfig"] = tuning;
        IngestionSpec::from_task(&t)
    };
    let spec = with(
        json!({"type": "index_parallel", "forceGuaranteedRollup": true,
        "maxNumConcurrentSubTasks": 4, "maxRetry": 1,
        "splitHintSpec": {"type": "maxSize", "maxSplitSize": 1000, "maxNumFiles": 2},
        "partitionsSpec": {"type": "hashed", "numShards": 3, "partitionDimensions": ["srcIP"]}}),
    )
    .unwrap();
    assert_eq!(
        spec.tuning.partitions,
        PartitionsSpec::Hashed {
            num_shards: Some(3),
            target_rows_per_segment: None,
            dimensions: vec!["srcIP".into()]
        }
    );
    assert_eq!(spec.tuning.parallel.max_num_concurrent_sub_tasks, 4);
    assert_eq!(spec.tuning.parallel.max_retry, 1);
    assert_eq!(spec.tuning.parallel.max_split_size, 1000);
    assert_eq!(spec.tuning.parallel.max_num_files, 2);
    let single = with(json!({"partitionsSpec": {"type": "single_dim",
        "partitionDimension": "srcIP", "targetPartitionSize": 10}}))
    .unwrap();
    assert!(matches!(
        single.tuning.partitions,
        PartitionsSpec::Range {
            single_dim: true,
            target_rows_per_segment: Some(10),
            ..
        }
    ));

    let field_of = |tuning: Value| with(tuning).unwrap_err().field;
    let p = "spec.tuningConfig.partitionsSpec";
    assert_eq!(
        field_of(
            json!({"partitionsSpec": {"type": "hashed", "numShards": 2, "targetRowsPerSegment": 9}})
        ),
        format!("{p}.numShards")
    );
    assert_eq!(
        field_of(json!({"partitionsSpec": {"type": "range", "targetRowsPerSegment": 9}})),
        format!("{p}.partitionDimensions")
    );
    assert_eq!(
        field_of(json!({"partitionsSpec": {"type": "range", "partitionDimensions": ["a"]}})),
        format!("{p}.targetRowsPerSegment")
    );
    assert_eq!(
        field_of(json!({"partitionsSpec": {"type": "single_dim", "targetRowsPerSegment": 9}})),
        format!("{p}.partitionDimension")
    );
    assert_eq!(
        field_of(json!({"partitionsSpec": {"type": "random"}})),
        format!("{p}.type")
    );
    assert_eq!(
        field_of(json!({"partitionsSpec": {"type": "hashed", "partitionFunction": "md5"}})),
        format!("{p}.partitionFunction")
    );
    assert_eq!(
        field_of(json!({"forceGuaranteedRollup": true})),
        format!("{p}.type")
    );
    assert_eq!(
        field_of(json!({"maxNumConcurrentSubTasks": 0})),
        "spec.tuningConfig.maxNumConcurrentSubTasks"
    );
    assert_eq!(
        field_of(json!({"splitHintSpec": {"type": "segments", "maxNumFiles": 0}})),
        "spec.tuningConfig.splitHintSpec.maxNumFiles"
    );
    let mut t = tutorial("rollup-index.json");
    t["spec"]["ioConfig"]["appendToExisting"] = true.into();
    t["spec"]["tuningConfig"] = json!({"partitionsSpec": {"type": "hashed"}});
    assert_eq!(
        IngestionSpec::from_task(&t).unwrap_err().field,
        "spec.ioConfig.appendToExisting"
    );
}

#[test]
fn s3_sources_are_read_with_their_fields_named() {
    use crate::spec::{InputSource, S3Source};
    use serde_json::json;
    let with = |source: Value| {
        let mut t = tutorial("rollup-index.json");
        t["spec"]["ioConfig"]["inputSource"] = source;
        IngestionSpec::from_task(&t).map(|s| s.input_source)
    };
    assert_eq!(
        with(json!({"type": "s3", "prefixes": ["s3://b/data/part-"], "objectGlob": "*.json",
            "properties": {"accessKeyId": "id", "secretAccessKey": {"type": "default", "password": "pw"}},
            "endpointConfig": {"url": "https://s3.example.com", "signingRegion": "eu-west-1"}}))
        .unwrap(),
        InputSource::S3(S3Source {
            objects: vec![],
            prefixes: vec![("b".into(), "data/part-".into())],
            object_glob: Some("*.json".into()),
            credentials: Some(("id".into(), "pw".into())),
            endpoint: Some("https://s3.example.com".into()),
            region: Some("eu-west-1".into()),
        })
    );
    let objects =
        with(json!({"type": "s3", "objects": [{"bucket": "b", "path": "k.json"}]})).unwrap();
    assert!(
        matches!(objects, InputSource::S3(s) if s.objects == vec![("b".to_string(), "k.json".to_string())])
    );
    let field_of = |source: Value| with(source).unwrap_err().field;
    let f = "spec.ioConfig.inputSource";
    assert_eq!(field_of(json!({"type": "s3"})), f);
    assert_eq!(
        field_of(json!({"type": "s3", "uris": [], "prefixes": []})),
        f
    );
    assert_eq!(
        field_of(json!({"type": "s3", "uris": ["http://b/k"]})),
        format!("{f}.uris[0]")
    );
    assert_eq!(
        field_of(json!({"type": "s3", "uris": ["s3://bucket"]})),
        format!("{f}.uris[0]")
    );
    assert_eq!(
        field_of(json!({"type": "s3", "objects": [{"bucket": "", "path": "k"}]})),
        format!("{f}.objects[0]")
    );
    assert_eq!(
        field_of(json!({"type": "s3", "uris": ["s3://b/k"], "properties": {"accessKeyId": "id"}})),
        format!("{f}.properties")
    );
    assert_eq!(
        field_of(json!({"type": "s3", "uris": ["s3://b/k"],
            "properties": {"accessKeyId": {"type": "vault"}, "secretAccessKey": "s"}})),
        format!("{f}.properties.accessKeyId.type")
    );
}
