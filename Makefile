# The original spec's commands. `make up` needs a Docker engine; without one, `npm start`
# runs the same system on the embedded default (PGlite, self-signed certificate, fake upstream).
COMPOSE ?= docker-compose

.PHONY: up up-metrics down logs migrate compose-check test bench certs build start

# PostgreSQL, a one-shot migration, backend and gateway, from .env (created with fresh secrets when missing).
up: .env deploy/certs/cert.pem
	$(COMPOSE) up -d --build

# The same plus Prometheus on 127.0.0.1:$$PROMETHEUS_PORT, scraping backend and gateway.
up-metrics: .env deploy/certs/cert.pem
	$(COMPOSE) --profile metrics up -d --build

down:
	$(COMPOSE) --profile metrics down

logs:
	$(COMPOSE) logs -f --tail=200

# The spec's `docker-compose exec backend alembic upgrade head`, in this project's terms.
migrate:
	$(COMPOSE) exec backend httvps migrate

# Validates docker-compose.yml against .env with no Docker engine needed.
compose-check: .env
	$(COMPOSE) config -q

test:
	npm test

bench:
	npm run bench

# A self-signed certificate for localhost; put a real one at the same paths for production.
certs deploy/certs/cert.pem:
	node bin/httvps.mjs certs dev --dir deploy/certs

# dist/httvps: one self-contained executable (bun build --compile).
build:
	npm run build

start:
	npm start

.env:
	node scripts/make-env.mjs .env
