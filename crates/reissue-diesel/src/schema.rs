//! The `users` table, as both migrations create it.

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        password_hash -> Text,
        roles -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}
