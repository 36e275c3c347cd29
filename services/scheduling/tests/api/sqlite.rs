use slotcast_test_support::TestDatabase;

use crate::helpers::spawn_app_on;

#[tokio::test]
async fn the_api_runs_on_sqlite_with_the_same_migrations() {
    let app = spawn_app_on(TestDatabase::sqlite().expect("sqlite")).await;
    let practitioner = app.create_practitioner().await;
    let alice = app.create_patient("Alice").await;
    let slots = app.create_slots(practitioner, &[(1, 2), (3, 4)]).await;
    assert_eq!(app.book(alice, slots[0]).await.status(), 201);
    assert_eq!(app.book(alice, slots[0]).await.status(), 409);
    assert_eq!(
        app.events("slotcast.scheduling.slot.created", 2)
            .await
            .len(),
        2
    );
}
