-- Robust aggregation per federation (existing federations keep the paper's plain behaviour), a bound
-- on reported sample counts, and when each participant was last seen.
ALTER TABLE "Federation" ADD COLUMN "robust" TEXT NOT NULL DEFAULT 'clip';
UPDATE "Federation" SET "robust" = 'none';
ALTER TABLE "Federation" ADD COLUMN "maxSamples" INTEGER NOT NULL DEFAULT 1000000;
ALTER TABLE "Participant" ADD COLUMN "lastSeenAt" TIMESTAMP(3);
