//! `TaskResource`: which slots a task needs. JSON key `resource` on a task, `taskResource` in a
//! worker's announcement of it.

use serde::{Deserialize, Serialize};

use crate::ids::TaskId;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResource {
    pub availability_group: String,
    #[serde(default = "one")]
    pub required_capacity: i32,
}

fn one() -> i32 {
    1
}

impl TaskResource {
    pub fn for_task(id: &TaskId) -> Self {
        TaskResource {
            availability_group: id.to_string(),
            required_capacity: 1,
        }
    }
}
