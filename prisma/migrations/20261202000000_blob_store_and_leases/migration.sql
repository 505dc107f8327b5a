-- Weight bytes leave the rows: updates and global models are named by their sha256 in a blob store
-- (a folder, or the "Blob" table on Postgres). Existing rows keep their bytes until the server moves
-- them into the store at start (db/legacy-weights.ts), which then clears "weights".
ALTER TABLE "Update" ALTER COLUMN "weights" DROP NOT NULL;
ALTER TABLE "Update" ADD COLUMN "size" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "Update" ADD COLUMN "prunedAt" TIMESTAMP(3);
UPDATE "Update" SET "size" = length("weights") WHERE "weights" IS NOT NULL;
CREATE INDEX "Update_sha256_idx" ON "Update"("sha256");

ALTER TABLE "GlobalModel" ALTER COLUMN "weights" DROP NOT NULL;
ALTER TABLE "GlobalModel" ADD COLUMN "size" INTEGER NOT NULL DEFAULT 0;
UPDATE "GlobalModel" SET "size" = length("weights") WHERE "weights" IS NOT NULL;
CREATE INDEX "GlobalModel_sha256_idx" ON "GlobalModel"("sha256");

CREATE TABLE "Blob" (
    "sha256" TEXT NOT NULL,
    "size" INTEGER NOT NULL,
    "bytes" BYTEA NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Blob_pkey" PRIMARY KEY ("sha256")
);

-- Aggregation leases are renewed by their holder while it computes.
ALTER TABLE "Round" ADD COLUMN "leaseUntil" TIMESTAMP(3);
UPDATE "Round" SET "leaseUntil" = "aggregationStartedAt" + interval '60 seconds' WHERE "state" = 'aggregating';
