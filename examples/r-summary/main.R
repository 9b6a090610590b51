library(berth)      # berth's helper library
library(digest)     # from the Debian system package r-cran-digest
library(berthdemo)  # from the local CRAN-style index

x <- unlist(parameters()$values)
cat("in container:", in_container(), "\n")
cat("values:", x, "\n")
cat("mean:", mean(x), " spread:", spread(x), "\n")
cat("sha1 of the values:", digest(x, algo = "sha1"), "\n")
writeLines(format(summary(x)), file.path(out_dir(), "summary.txt"))
