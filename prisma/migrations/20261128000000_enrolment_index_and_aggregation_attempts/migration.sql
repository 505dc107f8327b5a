-- Enrolment order of participants within a federation (0-based). Participants derive their local
-- seeds from it, so an over-HTTP federation reproduces the in-process simulator.
ALTER TABLE "Participant" ADD COLUMN "enrolmentIndex" INTEGER;
UPDATE "Participant" p SET "enrolmentIndex" = ranked.position
FROM (SELECT "id", (row_number() OVER (PARTITION BY "federationId" ORDER BY "createdAt", "id") - 1)::INTEGER AS position FROM "Participant") ranked
WHERE p."id" = ranked."id";
ALTER TABLE "Participant" ALTER COLUMN "enrolmentIndex" SET NOT NULL;
CREATE UNIQUE INDEX "Participant_federationId_enrolmentIndex_key" ON "Participant"("federationId", "enrolmentIndex");

-- Aggregation claims of a round; a round whose aggregation keeps failing is marked failed.
ALTER TABLE "Round" ADD COLUMN "aggregationAttempts" INTEGER NOT NULL DEFAULT 0;
