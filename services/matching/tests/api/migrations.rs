//! Replicas starting together on a fresh database.

use slotcast_test_support::TestDatabase;

#[tokio::test]
async fn replicas_starting_together_on_a_fresh_database_all_come_up() {
    let db = TestDatabase::postgres().await.unwrap();
    let url = db.url();
    let starts = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            slotcast_kit::db::connect_and_migrate::<matching::migration::Migrator>(&url, 2).await
        })
    });
    for start in futures::future::join_all(starts).await {
        let connection = start
            .unwrap()
            .expect("every replica migrates or finds it done");
        connection.close().await.unwrap();
    }
}
