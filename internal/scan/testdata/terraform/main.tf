terraform {
  backend "s3" {
    bucket = "state"
    key    = "prod.tfstate"
  }
}

provider "aws" {
  region     = "eu-west-1"
  secret_key = "k9Qw2ZxR7vB1nM4tY6uP0sLd3HfJ8gCa5eTiVoXy"
}

variable "db_password" {
  type    = string
  default = "Sup3r-S3cret-Pa55w0rd!"
}

variable "api_token" {
  type      = string
  sensitive = true
}

variable "password_length" {
  type    = number
  default = 24
}

resource "aws_db_instance" "main" {
  engine   = "postgres"
  username = "app"
  password = var.db_password
}

output "db_password" {
  value = aws_db_instance.main.password
}

output "db_password_safe" {
  value     = aws_db_instance.main.password
  sensitive = true
}

output "leak" {
  value = nonsensitive(var.api_token)
}
