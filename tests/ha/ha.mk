# ha.mk: the local high-availability cluster and its fault tests (issue 17).
# Included from the Makefile; uses its variables (BUILD, ALL_CFLAGS, ...).
#
#   make ha-up      PostgreSQL primary + synchronous hot standby under
#                   pg_auto_failover, two sentrad, HAProxy in front; all on
#                   loopback, state in var/ha (scripts/ha.sh)
#   make ha-down    stops all of it; nothing is left running
#   make ha-test    the fault tests (tests/ha/ha-test.sh) on a cluster of
#                   their own in a temporary directory

HA_LOAD := $(BUILD)/ha/ha_load

.PHONY: ha-up ha-down ha-status ha-test ha-load
ha-load: $(HA_LOAD)

$(HA_LOAD): tests/ha/ha_load.c $(COMMON_OBJ) $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ tests/ha/ha_load.c $(COMMON_OBJ) $(LDFLAGS) $(PKG_LIBS) -lm

ha-up: all $(HA_LOAD)
	scripts/deps.sh --ha
	HA_LOAD=$(HA_LOAD) SENTRAD=$(SENTRAD) scripts/ha.sh up var/ha

ha-down:
	scripts/ha.sh down var/ha

ha-status:
	scripts/ha.sh status var/ha

ha-test: all $(HA_LOAD)
	scripts/deps.sh --ha
	HA_LOAD=$(HA_LOAD) SENTRAD=$(SENTRAD) tests/ha/ha-test.sh
