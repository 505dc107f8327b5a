-- Issue 16: what a federation may add to the paper's settings (existing federations keep the paper's):
-- a server optimiser on the head delta, participants keeping their Adam states across rounds, a
-- learning-rate schedule, augmented views, and label-free model selection with the version it chose.
-- The server optimiser's state after each version lives in the blob store, named by the model row.
ALTER TABLE "Federation" ADD COLUMN "serverOptimizer" TEXT NOT NULL DEFAULT 'none';
ALTER TABLE "Federation" ADD COLUMN "localOptimizer" TEXT NOT NULL DEFAULT 'reset';
ALTER TABLE "Federation" ADD COLUMN "lrSchedule" TEXT NOT NULL DEFAULT 'constant';
ALTER TABLE "Federation" ADD COLUMN "augment" TEXT NOT NULL DEFAULT 'none';
ALTER TABLE "Federation" ADD COLUMN "selection" TEXT NOT NULL DEFAULT 'none';
ALTER TABLE "Federation" ADD COLUMN "selectedVersion" INTEGER;
ALTER TABLE "GlobalModel" ADD COLUMN "serverStateSha256" TEXT;
CREATE INDEX "GlobalModel_serverStateSha256_idx" ON "GlobalModel"("serverStateSha256");
