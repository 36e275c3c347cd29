//! Seeding waiting lists fast, by SQL, into scheduling's and matching's databases alike.
//!
//! Through the API a million entries would take hours; here `INSERT … SELECT … FROM
//! generate_series` writes the same rows into both databases in seconds. The ids are derived in
//! SQL (`md5('slotcast-bench:…' || n)::uuid`), so both databases get the same patient, entry and
//! practitioner ids without shipping a row over the wire: scheduling holds what its API would
//! have written (practitioners, patients, `active` entries of kind `new`), and matching holds the
//! projection its consumer would have built from the `practitioner.registered`,
//! `patient.registered` and `waitlist.joined` events of those rows. No event is published for
//! them: both sides already hold the result, as after a replay.

use sea_orm::{ConnectionTrait as _, DatabaseConnection};
use uuid::Uuid;

/// Whose waiting list a group of entries is on.
#[derive(Debug, Clone, Copy)]
pub enum Practitioner {
    /// One practitioner (created through the API).
    Fixed(Uuid),
    /// Practitioners created here, `per` entries each: entry `e` is on number `(e-1)/per + 1`.
    Numbered { per: u64 },
}

/// Entries `from..=to` of a group, each with a patient of its own.
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    /// Keeps the ids of one group apart from another's.
    pub tag: &'a str,
    pub practitioner: Practitioner,
    pub from: u64,
    pub to: u64,
    /// Every `fits_every`-th entry has no window (fits any slot); the others wait for slots
    /// 400 days out, which no benchmark posts. 0: none fits.
    pub fits_every: u64,
}

impl Group<'_> {
    fn patient(&self) -> String {
        format!("md5('slotcast-bench:pa:{}:' || e)::uuid", self.tag)
    }

    fn entry(&self) -> String {
        format!("md5('slotcast-bench:we:{}:' || e)::uuid", self.tag)
    }

    fn practitioner(&self) -> String {
        match self.practitioner {
            Practitioner::Fixed(id) => format!("'{id}'::uuid"),
            Practitioner::Numbered { per } => {
                format!("md5('slotcast-bench:pr:' || ((e - 1) / {per} + 1))::uuid")
            }
        }
    }

    fn earliest(&self) -> String {
        if self.fits_every == 0 {
            "now() + interval '400 days'".to_owned()
        } else {
            format!(
                "CASE WHEN e % {} = 0 THEN NULL ELSE now() + interval '400 days' END",
                self.fits_every
            )
        }
    }

    fn series(&self) -> String {
        format!(
            "generate_series({}::bigint, {}::bigint) AS e",
            self.from, self.to
        )
    }
}

/// The id of numbered practitioner `k` (see [`Practitioner::Numbered`]), as SQL computes it.
pub fn numbered_practitioner(k: u64) -> Uuid {
    let digest = md5(format!("slotcast-bench:pr:{k}").as_bytes());
    Uuid::from_bytes(digest)
}

/// Numbered practitioners `from..=to`, in both databases.
pub async fn practitioners(
    scheduling: &DatabaseConnection,
    matching: &DatabaseConnection,
    from: u64,
    to: u64,
) -> anyhow::Result<()> {
    let series = format!("generate_series({from}::bigint, {to}::bigint) AS k");
    let id = "md5('slotcast-bench:pr:' || k)::uuid";
    let in_scheduling = format!(
        "INSERT INTO practitioners (id, name, specialty, timezone, consultation_fee_cents, currency, created_at) \
         SELECT {id}, 'Dr Bench ' || k, 'General practice', 'Europe/Paris', 4500, 'EUR', now() FROM {series}"
    );
    let in_matching = format!(
        "INSERT INTO practitioners (id, name, specialty, timezone, consultation_fee_cents, currency) \
         SELECT {id}, 'Dr Bench ' || k, 'General practice', 'Europe/Paris', 4500, 'EUR' FROM {series}"
    );
    in_both(scheduling, matching, &in_scheduling, &in_matching).await
}

/// The patients and entries of `group`, in both databases; then `ANALYZE`, as autovacuum would
/// after such a load.
pub async fn entries(
    scheduling: &DatabaseConnection,
    matching: &DatabaseConnection,
    group: Group<'_>,
) -> anyhow::Result<()> {
    let (patient, entry, practitioner, earliest, series, tag) = (
        group.patient(),
        group.entry(),
        group.practitioner(),
        group.earliest(),
        group.series(),
        group.tag,
    );
    let name = format!("'Patient {tag} ' || e");
    let email = format!("'patient-{tag}-' || e || '@bench.example'");
    let joined = "now() - interval '400 days' + e * interval '1 millisecond'";
    let s = async {
        scheduling
            .execute_unprepared(&format!(
                "INSERT INTO patients (id, name, email, locale, timezone, created_at) \
                 SELECT {patient}, {name}, {email}, 'en', NULL, now() FROM {series}"
            ))
            .await?;
        scheduling
            .execute_unprepared(&format!(
                "INSERT INTO waitlist_entries (id, patient_id, practitioner_id, kind, appointment_id, earliest, latest, status, created_at, closed_at) \
                 SELECT {entry}, {patient}, {practitioner}, 'new', NULL, {earliest}, NULL, 'active', {joined}, NULL FROM {series}"
            ))
            .await?;
        scheduling.execute_unprepared("ANALYZE").await?;
        anyhow::Ok(())
    };
    let m = async {
        matching
            .execute_unprepared(&format!(
                "INSERT INTO patients (id, name, email, locale, timezone) \
                 SELECT {patient}, {name}, {email}, 'en', NULL FROM {series}"
            ))
            .await?;
        matching
            .execute_unprepared(&format!(
                "INSERT INTO waitlist_entries (id, patient_id, practitioner_id, kind, held_starts_at, earliest, latest, active, joined_at) \
                 SELECT {entry}, {patient}, {practitioner}, 'new', NULL, {earliest}, NULL, true, {joined} FROM {series}"
            ))
            .await?;
        matching.execute_unprepared("ANALYZE").await?;
        anyhow::Ok(())
    };
    let (s, m) = tokio::join!(s, m);
    s?;
    m?;
    Ok(())
}

/// Runs `in_scheduling` and `in_matching` on their databases at once.
async fn in_both(
    scheduling: &DatabaseConnection,
    matching: &DatabaseConnection,
    in_scheduling: &str,
    in_matching: &str,
) -> anyhow::Result<()> {
    let (s, m) = tokio::join!(
        scheduling.execute_unprepared(in_scheduling),
        matching.execute_unprepared(in_matching)
    );
    s?;
    m?;
    Ok(())
}

/// MD5 (RFC 1321), to compute in Rust the ids that SQL derives with `md5()`. Small inputs only.
fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut msg = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    let (mut a0, mut b0, mut c0, mut d0) = (
        0x6745_2301u32,
        0xefcd_ab89u32,
        0x98ba_dcfeu32,
        0x1032_5476u32,
    );
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, w) in [a0, b0, c0, d0].iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// Gives every patient of `group` a number (`+3361` and the entry's number) and their consent to
/// texts, in both databases, as their registration and preferences events would have.
pub async fn texting(
    scheduling: &DatabaseConnection,
    matching: &DatabaseConnection,
    group: Group<'_>,
) -> anyhow::Result<()> {
    let (patient, series) = (group.patient(), group.series());
    let phone = "'+3361' || lpad(e::text, 7, '0')";
    let in_scheduling = format!(
        "UPDATE patients SET phone = p.phone, notify_sms = true, sms_consent_at = now(), \
         sms_consent_via = 'api' FROM (SELECT {patient} AS id, {phone} AS phone FROM {series}) p \
         WHERE patients.id = p.id"
    );
    let in_matching = format!(
        "UPDATE patients SET phone = p.phone, sms_enabled = true \
         FROM (SELECT {patient} AS id, {phone} AS phone FROM {series}) p WHERE patients.id = p.id"
    );
    in_both(scheduling, matching, &in_scheduling, &in_matching).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_the_reference_vectors() {
        let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex(md5(b"The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
    }
}
