# The original spec's commands. `make up` needs a Docker engine; without one, `npm start`
# runs the same system on the embedded default (PGlite, self-signed certificate, fake upstream).
COMPOSE ?= docker-compose

.PHONY: up down logs migrate test bench certs build start

up: .env deploy/certs/cert.pem
	$(COMPOSE) up -d --build

down:
	$(COMPOSE) down

logs:
	$(COMPOSE) logs -f --tail=200

# The spec's `docker-compose exec backend alembic upgrade head`, in this project's terms.
migrate:
	$(COMPOSE) exec backend httvps migrate

test:
	npm test

bench:
	npm run bench

certs deploy/certs/cert.pem:
	node bin/httvps.mjs certs dev --dir deploy/certs

build:
	npm run build

start:
	npm start

.env:
	cp .env.example .env
