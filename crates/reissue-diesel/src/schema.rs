//! The `users` table, as the migrations of both backends leave it.

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        password_hash -> Text,
        roles -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        vouched_at -> Nullable<BigInt>,
    }
}
