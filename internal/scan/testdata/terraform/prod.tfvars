region        = "eu-west-1"
admin_password = "Xq7!vB2#mN9pL4wZ"
instance_type = "t3.micro"
