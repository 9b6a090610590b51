# berth's helper library for R blocks: library(berth); p <- parameters(); out_dir()

.berth <- new.env(parent = emptyenv())

in_container <- function() Sys.getenv("BERTH_IN_CONTAINER") == "1"

data_dir <- function() {
  d <- Sys.getenv("BERTH_DATA_DIR")
  if (d == "") "/data" else d
}

config <- function() {
  if (is.null(.berth$config)) {
    path <- file.path(data_dir(), "config.json")
    .berth$config <- if (file.exists(path)) jsonlite::fromJSON(path, simplifyVector = TRUE) else list()
  }
  .berth$config
}

parameters <- function() {
  p <- config()$parameters
  if (is.null(p)) list() else p
}

.dir <- function(..., create = FALSE) {
  path <- file.path(data_dir(), ...)
  if (create) dir.create(path, recursive = TRUE, showWarnings = FALSE)
  path
}

in_dir <- function() .dir("in")
out_dir <- function() .dir("out", create = TRUE)
in_tables_dir <- function() .dir("in", "tables")
in_files_dir <- function() .dir("in", "files")
out_tables_dir <- function() .dir("out", "tables", create = TRUE)
out_files_dir <- function() .dir("out", "files", create = TRUE)
