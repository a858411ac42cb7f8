//! Which entities the gateway serves: every registered entity whose declared store is
//! connected (outbox events are not records and are left out), named by its table.

use udl::{DataLayer, EntityMeta, StoreKind};

/// Every served entity, in registration order. A name claimed in two stores is served by
/// neither (the path could not say which).
pub fn served_entities(data: &DataLayer) -> Vec<&'static EntityMeta> {
    let candidates: Vec<&'static EntityMeta> = data
        .registry()
        .entities()
        .into_iter()
        .filter(|e| e.store.is_some_and(|store| connected(data, store)))
        .collect();
    candidates
        .iter()
        .copied()
        .filter(|e| candidates.iter().filter(|o| o.name == e.name).count() == 1)
        .collect()
}

/// The served entity called `name`.
pub fn served_entity(data: &DataLayer, name: &str) -> Option<&'static EntityMeta> {
    served_entities(data).into_iter().find(|e| e.name == name)
}

fn connected(data: &DataLayer, store: StoreKind) -> bool {
    data.unaudited_records(store).is_ok()
}
