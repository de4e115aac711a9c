-- Loaded by the compose stack's MySQL 8.4 at its first start, after the schema (not by
-- `edm setup`: its name has no `NN_` version, so sqlx's migrator leaves it out).
-- The course's Node inventory service (inventory_service.js) logs in as root with the
-- npm `mysql` package, which speaks only mysql_native_password, not MySQL 8's default
-- caching_sha2_password: root gets the older method (enabled by --mysql-native-password=ON
-- in compose/docker-compose.yml). `edm` logs in either way (TLS or RSA for caching_sha2).
ALTER USER 'root'@'%' IDENTIFIED WITH mysql_native_password BY 'inventorypw';
