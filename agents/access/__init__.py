"""The access service every front end shares: users and credentials (`users`), login
protection (`guard`) and RFC 8341 access control (`nacm`). No protocol lives here."""
