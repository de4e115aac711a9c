//! The services' own stores (polyglot persistence): stock in MySQL, orders in DynamoDB.

pub mod inventory;
pub mod orders;
